"""Book 8.2's DeepDream as a task of the one loop: gradient ascent on a photo, octave by octave.

  python -m scripts.convert_weights --arch=inception_v3 --input=inception_v3.h5 \
      --output=/tmp/inception
  python -m scripts.train --config=configs/generative/deep_dream.py \
      --config.task_config.weights_dir=/tmp/inception --workdir=/tmp/dream

A task without a dataset; the parameters are the image. The book's procedure:
- the photo at `num_octave` sizes, each `octave_scale` (1.4) times the previous, the last its
  own size;
- at each octave, `iterations` (20) steps of gradient ascent of size `step_size` (0.01) on the
  loss, each gradient divided by its mean absolute value, stopped for the octave once the loss
  exceeds `max_loss` (10: the book's cap, past which the picture turns to noise);
- the loss: for each layer of `layers` (mixed2, mixed3, mixed4, mixed5 with weights 0.2, 3, 2,
  1.5), its weight x the sum of its squared activations without a 2-pixel border, divided by
  the activation's size;
- between octaves the image is upscaled, and the detail that shrinking lost is put back: the
  photo at the new size minus the photo shrunk to the previous size and upscaled again.
Every octave's image is its own array of the state, so that each has a static shape; a step
works on the octave that `step // iterations` names (lax.switch). The image is kept in
InceptionV3's input space ([-1, 1], Keras' 'tf' preprocessing) as the book. At each octave's
end (the config evaluates every `iterations` steps) the run writes the dream so far,
`artifacts/dream-step<N>.png`, and logs the loss, which climbs from about 3.4 to the cap per
octave with ImageNet weights.
Weights: a folder written by scripts.convert_weights (Keras' InceptionV3 weights,
`task_config.weights_dir`). Without it the network has random weights: the run warns that the
picture then means nothing.
"""
import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from library import config as config_lib, steps, visualize
from library.errors import UserError
from library.task import Task
from projects.transfer import models as transfer_models


@flax.struct.dataclass
class DreamState:
  step: jax.Array
  params: tuple          # one (1, H_k, W_k, 3) image per octave, smallest first
  stopped: jax.Array     # (num_octave,) bool: the octave's loss passed max_loss


def default_task_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({
      'image': 'skimage:chelsea', 'height': 0, 'weights_dir': '', 'width_divisor': 1,
      'layers': ('mixed2', 'mixed3', 'mixed4', 'mixed5'),
      'layer_weights': (0.2, 3.0, 2.0, 1.5),
      'step_size': 0.01, 'num_octave': 3, 'octave_scale': 1.4, 'iterations': 20,
      'max_loss': 10.0})


def validate_task_config(config) -> None:
  t = config.task_config
  config_lib.check_known_keys(t, default_task_config(), 'task_config.')
  if len(t.layers) != len(t.layer_weights) or not t.layers:
    raise UserError(f'task_config.layers {tuple(t.layers)} needs one weight each in '
                    f'task_config.layer_weights, got {tuple(t.layer_weights)}')
  for name in t.layers:
    if name not in {f'mixed{k}' for k in range(11)}:
      raise UserError(f'task_config.layers has {name!r}; InceptionV3 has mixed0 ... mixed10')
  for key in ('num_octave', 'iterations'):
    if t[key] < 1:
      raise UserError(f'task_config.{key}={t[key]} must be >= 1')
  if t.octave_scale <= 1:
    raise UserError(f'task_config.octave_scale={t.octave_scale} must be > 1')
  expected = t.num_octave * t.iterations
  if config.num_train_steps != expected:
    raise UserError(f'num_train_steps={config.num_train_steps}: DeepDream takes '
                    f'task_config.num_octave x iterations = {expected} steps')


def octave_shapes(height: int, width: int, num_octave: int, scale: float):
  """(H, W) of each octave, smallest first; the last is the photo's."""
  return [(int(height / scale**k), int(width / scale**k)) for k in range(num_octave - 1, -1, -1)]


def _resize(x_1xHxWxC, shape):
  return jax.image.resize(x_1xHxWxC, (1, *shape, x_1xHxWxC.shape[-1]), 'bilinear')


def deprocess(x_1xHxWxC) -> np.ndarray:
  return np.clip((np.asarray(x_1xHxWxC[0]) + 1.0) * 127.5, 0, 255).astype(np.uint8)


def _photo(t) -> np.ndarray:
  """The photo at its own size (or `height` rows), as (1, H, W, 3) in [-1, 1]."""
  h, w = visualize.image_size(t.image, 'task_config.image')
  if t.height:
    h, w = t.height, max(1, round(w * t.height / h))
  pixels = visualize.load_image(t.image, (h, w), 3)
  return pixels[None] / 127.5 - 1.0


def _network(t):
  """(InceptionV3 up to the deepest layer of `layers`, its variables or None)."""
  model = transfer_models.InceptionV3(
      include_top=False, preprocess='none', width_divisor=t.width_divisor,
      last_mixed=max(int(name[len('mixed'):]) for name in t.layers))
  if t.weights_dir:
    if t.width_divisor != 1:
      raise UserError(f'task_config.width_divisor={t.width_divisor}: converted weights are '
                      'for the full InceptionV3 (1)')
    from projects.transfer import convert  # pylint: disable=import-outside-toplevel
    return model, convert.load('inception_v3', t.weights_dir, preprocess='none')[1]
  print('warning: task_config.weights_dir is empty: InceptionV3 has random weights, and the '
        'dream means nothing (weights_dir=imagenet:inception_v3_notop fetches the ImageNet ones)',
        flush=True)
  return model, None


def make_task(config, data, total_steps: int) -> Task:
  del data, total_steps
  t = config.task_config
  photo = _photo(t)
  shapes = octave_shapes(photo.shape[1], photo.shape[2], t.num_octave, t.octave_scale)
  if min(min(s) for s in shapes) < 75:
    raise UserError(f'task_config: the smallest octave is {shapes[0]}, InceptionV3 needs 75x75 '
                    'at least: a larger photo (task_config.height) or fewer octaves')
  model, variables = _network(t)
  if variables is None:
    init = jax.jit(model.init, compiler_options=steps.INIT_COMPILER_OPTIONS)
    variables = init(jax.random.key(config.seed), jnp.zeros((1, 75, 75, 3)))
  originals = jax.jit(lambda p: [_resize(p, s) for s in shapes])(
      jnp.asarray(photo, jnp.float32))

  def loss_fn(x):
    _, state = model.apply(variables, x, train=False, mutable=['intermediates'])
    found = state['intermediates']
    total = 0.0
    for name, weight in zip(t.layers, t.layer_weights):
      a = found[name][0]
      total += weight * jnp.sum(jnp.square(a[:, 2:-2, 2:-2, :])) / a.size
    return total

  def with_detail(x, k):
    """Octave k's image with the detail of the photo at shape k that shrinking lost."""
    shrunk = originals[k - 1] if k else originals[0]
    return x + originals[k] - _resize(shrunk, shapes[k])

  def start_of(images, k):
    """Octave k's starting image: the previous octave's result upscaled (the photo at k=0)."""
    if k == 0:
      return originals[0]
    return _resize(with_detail(images[k - 1], k - 1), shapes[k])

  def init(rng, batch):
    del rng, batch
    return DreamState(step=jnp.zeros((), jnp.int32),
                      params=tuple(jnp.zeros((1, *s, 3), jnp.float32) for s in shapes),
                      stopped=jnp.zeros(t.num_octave, bool))

  def train_step(state, batch):
    del batch
    octave = jnp.minimum(state.step // t.iterations, t.num_octave - 1)
    first = state.step % t.iterations == 0

    def branch(k):
      def run(images, stopped):
        x = jnp.where(first, start_of(images, k), images[k])
        loss, grad = jax.value_and_grad(loss_fn)(x)
        # The book stops an octave's loop once the loss passes the cap, before stepping.
        stop = stopped[k] | (loss > t.max_loss)
        grad = grad / jnp.maximum(jnp.mean(jnp.abs(grad)), 1e-7)
        x = jnp.where(stop, x, x + t.step_size * grad)
        images = tuple(x if j == k else images[j] for j in range(t.num_octave))
        return images, stopped.at[k].set(stop), loss
      return run

    images, stopped, loss = jax.lax.switch(octave, [branch(k) for k in range(t.num_octave)],
                                           state.params, state.stopped)
    return state.replace(step=state.step + 1, params=images, stopped=stopped), {
        'loss': loss, 'octave': octave.astype(jnp.float32),
        'capped': stopped[octave].astype(jnp.float32)}

  def artifacts(state, step):
    k = min(max(step - 1, 0) // t.iterations, t.num_octave - 1)
    images = jax.device_get(state.params)
    done = step % t.iterations == 0
    picture = with_detail(jnp.asarray(images[k]), k) if done else jnp.asarray(images[k])
    return {'dream': deprocess(picture)}

  return Task(init=init, train_step=train_step, params=lambda state: state.params,
              artifacts=artifacts)
