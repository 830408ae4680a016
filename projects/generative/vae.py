"""Book 8.4's variational autoencoder as a task of the one loop.

  python -m scripts.train --config=configs/generative/mnist_vae.py:embedded --workdir=/tmp/vae

A dataset task without training labels (the digits' labels only colour the latent scatter).
Each step encodes a batch to a mean and log-variance, draws z = mean + sigma * eps with eps from
`fold_in(state.rng, step)` (a resumed run draws the same noise), decodes z to pixel logits, and
minimizes the book's loss per example: the binary cross-entropy averaged over the pixels plus
`kl_weight` (5e-4) times the KL term averaged over the latent dimensions. Validation and test
report the same loss, with noise from a fixed key, beside its two parts.
- `book_sampling`: the book draws z = mean + exp(log_var) * eps, i.e. it uses its "log-variance"
  as a log standard deviation in the sample but as a log-variance in the KL term. Off (the
  default), sigma = exp(log_var / 2), the reparameterization the KL term assumes; on, the book's.
Artifacts at each evaluation (workdir/artifacts/, and scripts.generate): `latent_grid`, a
`grid` x `grid` picture of digits decoded over the latent plane at normal quantiles
`quantiles` (0.05 to 0.95; other latent dimensions at 0), and `latent_scatter`, the test
digits' mean codes coloured by label. `predict` returns reconstructions (pixel probabilities).
"""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from scipy import stats

from library import config as config_lib, optimizers
from library.data import pipeline, preprocessing
from library.errors import UserError
from library.supervised import TrainState
from library.task import Task, make_model, summary_table
from projects.generative import pictures


def default_task_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({'kl_weight': 5e-4, 'book_sampling': False, 'grid': 15,
                                    'quantiles': (0.05, 0.95), 'scatter_points': 1000})


def validate_task_config(config) -> None:
  t = config.task_config
  config_lib.check_known_keys(t, default_task_config(), 'task_config.')
  if t.kl_weight < 0:
    raise UserError(f'task_config.kl_weight={t.kl_weight} must be >= 0')
  if t.grid < 1:
    raise UserError(f'task_config.grid={t.grid} must be >= 1')
  low, high = t.quantiles
  if not 0 < low < high < 1:
    raise UserError(f'task_config.quantiles={tuple(t.quantiles)} must be 0 < low < high < 1')


def load_data(config, arrays=None) -> pipeline.Datasets:
  return pipeline.prepare(config, arrays)


def losses(model, params, images, key, kl_weight: float, book_sampling: bool):
  """Per-example (loss, reconstruction BCE, KL term) of a batch, with the noise of `key`."""
  mean, log_var = model.apply({'params': params}, images, method='encode')
  eps = jax.random.normal(key, mean.shape, mean.dtype)
  sigma = jnp.exp(log_var) if book_sampling else jnp.exp(0.5 * log_var)
  logits = model.apply({'params': params}, mean + sigma * eps, method='decode')
  flat = lambda x: x.reshape(x.shape[0], -1)  # noqa: E731
  bce = jnp.mean(flat(optax.sigmoid_binary_cross_entropy(logits, images)), axis=-1)
  kl = -jnp.mean(1 + log_var - jnp.square(mean) - jnp.exp(log_var), axis=-1)
  return bce + kl_weight * kl, bce, kl


def latent_grid_codes(latent: int, grid: int, quantiles) -> np.ndarray:
  """(grid * grid, latent) codes: rows and columns at normal quantiles, the rest 0 (the book's
  grid: the first dimension runs down, the second across)."""
  values = stats.norm.ppf(np.linspace(*quantiles, grid))
  codes = np.zeros((grid * grid, latent), np.float32)
  codes[:, 0] = np.repeat(values, grid)
  if latent > 1:
    codes[:, 1] = np.tile(values, grid)
  return codes


def scatter_picture(codes_Nx2, labels_N) -> np.ndarray:
  """The codes' first two dimensions, coloured by label, as a uint8 RGB picture."""
  from library.plots import figure  # pylint: disable=import-outside-toplevel
  fig, ax = figure(figsize=(6, 5), dpi=80)
  points = ax.scatter(codes_Nx2[:, 0], codes_Nx2[:, 1], c=labels_N, cmap='tab10', s=6,
                      vmin=-0.5, vmax=9.5)
  fig.colorbar(points, ax=ax, ticks=range(10), label='digit')
  ax.set_xlabel('z[0]')
  ax.set_ylabel('z[1]')
  ax.set_title('test digits in latent space (mean codes)')
  fig.tight_layout()
  fig.canvas.draw()
  picture = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
  return picture


def make_task(config, data: pipeline.Datasets, total_steps: int) -> Task:
  t = config.task_config
  model = make_model(config.model)
  tx, schedule = optimizers.make_optimizer(config.optimizer, total_steps)
  example = data.example(1)['inputs']
  shape = jax.eval_shape(lambda: model.init(jax.random.key(0), example)['params'])
  out = jax.eval_shape(lambda p: model.apply({'params': p}, example), shape)
  if tuple(out.shape) != tuple(example.shape):
    raise UserError(f'model {config.model.name} decodes shape {tuple(out.shape[1:])}, the '
                    f'inputs are {tuple(example.shape[1:])}: set its image_shape')
  per_example = lambda params, images, key: losses(  # noqa: E731
      model, params, images, key, t.kl_weight, t.book_sampling)
  test = data.splits.get('test')
  decode = jax.jit(lambda params, z: jax.nn.sigmoid(model.apply({'params': params}, z,
                                                                method='decode')))
  encode = jax.jit(lambda params, x: model.apply({'params': params}, x, method='encode')[0])

  def init(rng, batch):
    params_rng, state_rng = jax.random.split(rng)
    params = model.init(params_rng, batch['inputs'])['params']
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, model_state={},
                      opt_state=tx.init(params), rng=state_rng)

  def train_step(state, batch):
    key = jax.random.fold_in(state.rng, state.step)
    weights = batch['weights']
    norm = jnp.maximum(jnp.sum(weights), 1.0)

    def loss_fn(params):
      loss, bce, kl = per_example(params, batch['inputs'], key)
      return jnp.sum(loss * weights) / norm, (bce, kl)

    loss, (bce, kl), params, opt_state, health = optimizers.update(tx, schedule, state, loss_fn,
                                                                   has_aux=True)
    metrics = {'loss': loss, 'reconstruction': jnp.sum(bce * weights) / norm,
               'kl': jnp.sum(kl * weights) / norm, 'count': jnp.sum(weights), **health}
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics

  def eval_step(state, batch):
    loss, bce, kl = per_example(state.params, batch['inputs'],
                                jax.random.fold_in(state.rng, 2**31 - 1))
    w = batch['weights']
    return {'loss': jnp.sum(loss * w), 'reconstruction': jnp.sum(bce * w),
            'kl': jnp.sum(kl * w), 'count': jnp.sum(w)}

  def predict(state, inputs):
    return jax.nn.sigmoid(model.apply({'params': state.params}, inputs))

  def artifacts(state, step):
    del step
    codes = latent_grid_codes(model.latent, t.grid, t.quantiles)
    out = {'latent_grid': pictures.tile(decode(state.params, codes), t.grid)}
    if test is not None and model.latent >= 2:
      n = min(t.scatter_points, len(test['inputs']))
      images = preprocessing.scale_inputs(test['inputs'][:n], data.input_scale)
      means = np.asarray(encode(state.params, jnp.asarray(images)))
      labels = np.asarray(test['labels'][:n])
      out['latent_scatter'] = scatter_picture(
          means, labels.argmax(-1) if labels.ndim > 1 else labels)
    return out

  def summary(batch):
    return summary_table(model, batch['inputs'][:1])

  return Task(init=init, train_step=train_step, eval_step=eval_step, predict=predict,
              summary=summary, artifacts=artifacts, params=lambda state: state.params,
              variables=lambda state: {'params': state.params})


def sample(config, state, key, count: int):
  """`count` digits decoded from codes drawn from the prior N(0, I), pixels in [0, 1]."""
  model = make_model(config.model)
  z = jax.random.normal(key, (count, model.latent))
  return jax.jit(lambda p, z: jax.nn.sigmoid(model.apply({'params': p}, z, method='decode')))(
      state.params, z)


def sample_fitted(config, state, train_inputs, key, count: int, batch_size: int = 500):
  """`count` digits decoded from codes drawn from a Gaussian fitted to the training digits'
  mean codes: where the encoder actually puts digits. With the book's small KL weight those
  codes spread wider than N(0, I), so prior samples fall mostly in the middle of the plane."""
  model = make_model(config.model)
  encode = jax.jit(lambda p, x: model.apply({'params': p}, x, method='encode')[0])
  codes = np.concatenate([
      np.asarray(encode(state.params, jnp.asarray(train_inputs[i:i + batch_size])))
      for i in range(0, len(train_inputs), batch_size)])
  mean, cov = codes.mean(0), np.cov(codes, rowvar=False).reshape(model.latent, model.latent)
  z = jax.random.multivariate_normal(key, jnp.asarray(mean), jnp.asarray(cov), (count,))
  return jax.jit(lambda p, z: jax.nn.sigmoid(model.apply({'params': p}, z, method='decode')))(
      state.params, z.astype(jnp.float32))
