"""The loop's seam on two tasks that are not supervised learning (tests/tasks/): one without a
dataset whose environment state is split over the devices, and two players updated in one
step. Each learns, writes its artifacts, gives the same result on 1 and 8 devices, and resumes
bitwise after SIGKILL."""
import json
import os
import sys

import jax
import numpy as np
import pytest

from library import inference, train
from tests.test_scripts import kill_midway_then_rerun

CONFIGS = 'tests/tasks/configs.py'


def _train(load_config, variant, workdir, devices=None, **overrides):
  config = load_config(CONFIGS, variant)
  for key, value in overrides.items():
    config[key] = value
  return train.train_and_evaluate(config, str(workdir), devices=devices)


def _records(workdir, split='train'):
  return [r for r in map(json.loads, open(os.path.join(workdir, 'metrics.jsonl')))
          if r['split'] == split]


def _leaves(workdir):
  state, _ = inference.load_state(str(workdir))
  return state, [np.asarray(x) for x in jax.tree.leaves(state)]


def test_a_task_without_a_dataset_learns_with_its_state_split_over_the_devices(load_config,
                                                                               tmp_path):
  results = _train(load_config, 'walkers', tmp_path / 'eight')
  assert results['steps'] == 60 and results['epochs'] is None and 'test' not in results
  assert results['devices'] == 8 and results['steps_per_second'] > 0
  losses = [r['loss'] for r in _records(tmp_path / 'eight')]
  assert [r['step'] for r in _records(tmp_path / 'eight')] == [10, 20, 30, 40, 50, 60]
  assert 'epoch' not in _records(tmp_path / 'eight')[0]
  assert losses[-1] < losses[0] / 3, losses                    # it learns sin(3x)
  assert not (tmp_path / 'eight' / 'data_spec.json').exists()
  artifacts = sorted(os.listdir(tmp_path / 'eight' / 'artifacts'))
  assert artifacts[:2] == ['curve-step10.txt', 'curve-step20.txt'] and len(artifacts) == 12
  assert 'curve_image-step60.png' in artifacts
  assert (tmp_path / 'eight' / 'artifacts' / 'curve-step60.txt').read_text().startswith(
      'step 60:')
  state, eight = _leaves(tmp_path / 'eight')
  positions = state.positions_W                # restored as the task lays it out
  assert not positions.sharding.is_fully_replicated
  assert {s.data.shape for s in positions.addressable_shards} == {(8,)}
  _train(load_config, 'walkers', tmp_path / 'one', devices=jax.devices()[:1])
  for a, b in zip(eight, _leaves(tmp_path / 'one')[1]):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_two_players_updated_in_one_step_reach_the_data(load_config, tmp_path):
  _train(load_config, 'two_players', tmp_path / 'eight')
  records = _records(tmp_path / 'eight')
  assert {'d_loss', 'g_loss', 'fake_mean', 'fake_std'} <= set(records[0])
  late = np.mean([r['fake_mean'] for r in records[len(records) // 2:]])
  # The generator starts near 0; the real samples are N(2, 0.5).
  assert abs(records[0]['fake_mean'] - 2.0) > 1.0 and abs(late - 2.0) < 0.6, records
  assert abs(records[-1]['d_loss'] - np.log(4.0)) < 0.15       # the discriminator is fooled
  state, eight = _leaves(tmp_path / 'eight')
  fresh = inference.load_config(str(tmp_path / 'eight'))
  initial = train.setup(fresh).state
  for player in ('generator', 'discriminator'):
    before = jax.tree.leaves(getattr(initial, player).params)
    after = jax.tree.leaves(getattr(state, player).params)
    assert all(not np.array_equal(a, b) for a, b in zip(before, after)), player
  _train(load_config, 'two_players', tmp_path / 'one', devices=jax.devices()[:1])
  for a, b in zip(eight, _leaves(tmp_path / 'one')[1]):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def _command(variant, workdir):
  return [sys.executable, '-m', 'scripts.train', f'--config={CONFIGS}:{variant}',
          f'--workdir={workdir}', '--config.num_train_steps=300', '--config.eval_every_steps=20',
          '--config.checkpoint.every_steps=60', '--config.steps_per_dispatch.cpu=1',
          '--config.compilation_cache_dir=']


@pytest.mark.parametrize('variant', ['walkers', 'two_players'])
def test_sigkill_midway_then_rerun_is_bitwise_the_uninterrupted_run(tmp_path, variant):
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=2')
  killed, straight = kill_midway_then_rerun(lambda w: _command(variant, w), tmp_path,
                                            at_least=60, env=env)
  for a, b in zip(_leaves(killed)[1], _leaves(straight)[1]):
    np.testing.assert_array_equal(a, b)
