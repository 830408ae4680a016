"""Golden first steps (nanodo's habit): for one config of each family, the first training step's
loss and gradient norm, pinned. A change of initialisation, data order, loss or update that
moves them fails here, loudly, with the family named; a refactor of the loop must not move
them. Update a value only when the change of numbers is intended, and say why in the commit.

Each runs the loop's own path for one step (library/train.setup, then one chunk of the feed),
on the suite's 8 simulated devices, from the config's offline smoke variant.
"""
import jax
import numpy as np
import pytest

from library import train

# family -> (config file, variant, {metric: its value after the first step})
GOLDEN = {
    'mlp': ('configs/mlp/mnist_dense.py', 'embedded,smoke',
            {'loss': 2.4490108489990234, 'grad_norm': 2.467559814453125}),
    'convnets': ('configs/convnets/mnist_convnet.py', 'embedded,smoke',
                 {'loss': 2.329791307449341, 'grad_norm': 0.3764916956424713}),
    'functional': ('configs/functional/multi_output.py', 'smoke',
                   {'loss': 9.460689544677734, 'grad_norm': 0.9901670217514038,
                    'income_loss': 2.3001534938812256}),
    'recurrent': ('configs/recurrent/co2_forecast.py', 'gru,smoke',
                  {'loss': 0.13814522325992584, 'grad_norm': 0.3379046618938446}),
    'autoencoders': ('configs/autoencoders/digits.py', 'conv,smoke',
                     {'loss': 0.6931477785110474, 'grad_norm': 0.3833543658256531}),
    'generative (VAE)': ('configs/generative/mnist_vae.py', 'embedded,smoke',
                         {'loss': 0.688089907169342, 'grad_norm': 0.5160124897956848,
                          'kl': 0.0020213276147842407}),
    'generative (GAN)': ('configs/generative/cifar_frogs_gan.py', 'digits,smoke',
                         {'d_loss': 0.678367018699646, 'g_loss': 0.6980026364326477}),
    'transfer': ('configs/transfer/digits.py', 'scratch,smoke',
                 {'loss': 1.6119483709335327, 'grad_norm': 0.14307455718517303}),
    'reinforcement': ('configs/reinforcement/cartpole_dqn.py', 'one_seed,smoke',
                      {'loss': 0.5708907246589661, 'q_mean': 0.0016878455644473433}),
}


def first_step(config) -> dict:
  """The metrics of the first training step, as the loop runs it."""
  config.steps_per_dispatch.cpu = 1
  s = train.setup(config)
  feed = s.feed
  _, metrics = feed.chunk(s.state, *feed.args(0, 1))
  return {name: float(np.ravel(jax.device_get(value))[0]) for name, value in metrics.items()}


@pytest.mark.parametrize('family', sorted(GOLDEN))
def test_the_first_step_of_each_family_is_pinned(load_config, family):
  path, variant, expected = GOLDEN[family]
  _check(family, first_step(load_config(path, variant)), expected, f'{path}:{variant}')


def test_the_first_step_of_a_competition_table_is_pinned(load_config, tmp_path):
  """The tabular family: TabularNet on Boston as a competition folder, one model (folds drop
  the gradient norm), the target standardized."""
  from projects.tabular import competitions  # pylint: disable=import-outside-toplevel
  competitions.make('boston', str(tmp_path / 'boston'))
  config = load_config('configs/tabular/competition.py', 'boston,smoke')
  config.data.path = str(tmp_path / 'boston')
  config.members.scheme = ''
  config.batch_size = 16
  _check('tabular', first_step(config), TABULAR, 'configs/tabular/competition.py:boston')


TABULAR = {'loss': 1.1097898483276367, 'grad_norm': 4.1922173500061035}


def _check(family: str, got: dict, expected: dict, where: str) -> None:
  for name, value in expected.items():
    assert name in got, (family, sorted(got))
    np.testing.assert_allclose(got[name], value, rtol=2e-5,
                               err_msg=f'{family}: the first {name} moved ({where})')
