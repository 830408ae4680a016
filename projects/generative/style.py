"""Book 8.3's neural style transfer as a task of the one loop: the parameters are the image.

  python -m scripts.train --config=configs/generative/style_transfer.py \
      --config.task_config.weights_dir=/tmp/vgg19 --workdir=/tmp/style

A task without a dataset. Its state holds the combination image (in VGG19's caffe-preprocessed
space, starting from the content image, as the book), the L-BFGS state, and the fixed targets:
the content image's features at `content_layer` and the style image's Gram matrices at
`style_layers`, computed once. Each step is one L-BFGS iteration (optax's `lbfgs`, its zoom
line search, float32) on the book's loss:
- content: `content_weight` x the sum of squared differences of block5_conv2's features;
- style: `style_weight` / 5 x, per layer, sum((G_style - G_combination)^2) / (4 C^2 (HW)^2);
- total variation: `tv_weight` x sum((dx^2 + dy^2)^1.25).
The book runs 20 rounds of L-BFGS with 15 iterations each, each round starting L-BFGS afresh:
`restart_every` (15) resets the L-BFGS memory, and the config evaluates (writes the image,
`artifacts/styled-step<N>.png`) once per round.
The network's weights come from a folder written by scripts.convert_weights (Keras'
VGG19 weights, `task_config.weights_dir`). Without it the network has random weights: the run
says so, and its picture shows nothing of the style.
"""
import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from library import config as config_lib, steps, visualize
from library.errors import UserError
from library.task import Task
from projects.transfer import models as transfer_models

STYLE_LAYERS = tuple(f'block{i}_conv1' for i in range(1, 6))


@flax.struct.dataclass
class StyleState:
  step: jax.Array
  params: jax.Array            # (1, H, W, 3): the combination image, preprocessed
  opt_state: object
  content_target: jax.Array
  style_targets: dict          # layer -> (C, C) Gram matrix of the style image


def default_task_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({
      'content_image': 'skimage:chelsea', 'style_image': 'skimage:coffee', 'height': 400,
      'weights_dir': '', 'widths': (64, 128, 256, 512, 512),
      'content_layer': 'block5_conv2', 'style_layers': STYLE_LAYERS,
      'content_weight': 0.025, 'style_weight': 1.0, 'tv_weight': 1e-4,
      'memory_size': 10, 'restart_every': 15})


def validate_task_config(config) -> None:
  t = config.task_config
  config_lib.check_known_keys(t, default_task_config(), 'task_config.')
  if t.height < 16:
    raise UserError(f'task_config.height={t.height} must be >= 16 (VGG pools 5 times)')
  for key in ('memory_size', 'restart_every'):
    if t[key] < 1:
      raise UserError(f'task_config.{key}={t[key]} must be >= 1')
  known = {f'block{b}_conv{i}' for b in range(1, 6) for i in range(1, 5)}
  for name in (t.content_layer, *t.style_layers):
    if name not in known:
      raise UserError(f'task_config layer {name!r} is not a VGG19 convolution (block1_conv1 '
                      '... block5_conv4)')


def _gram(features_HxWxC):
  f = features_HxWxC.reshape(-1, features_HxWxC.shape[-1])
  return f.T @ f


def total_variation(x_1xHxWxC):
  a = jnp.square(x_1xHxWxC[:, :-1, :-1] - x_1xHxWxC[:, 1:, :-1])
  b = jnp.square(x_1xHxWxC[:, :-1, :-1] - x_1xHxWxC[:, :-1, 1:])
  return jnp.sum(jnp.power(a + b, 1.25))


def deprocess(x_1xHxWxC) -> np.ndarray:
  """The caffe-preprocessed image back to uint8 RGB."""
  x = np.asarray(x_1xHxWxC[0]) + np.asarray(transfer_models.CAFFE_MEAN_BGR, np.float32)
  return np.clip(x[..., ::-1], 0, 255).astype(np.uint8)


def _network(t):
  if t.weights_dir:
    from projects.transfer import convert  # pylint: disable=import-outside-toplevel
    model, variables = convert.load('vgg19', t.weights_dir, preprocess='none')
    return model, variables
  print('warning: task_config.weights_dir is empty: VGG19 has random weights, and the picture '
        'shows nothing of the style (weights_dir=imagenet:vgg19_notop fetches the ImageNet ones)',
        flush=True)
  model = transfer_models.VGG(depth=19, include_top=False, preprocess='none',
                              widths=tuple(t.widths))
  return model, None


def make_task(config, data, total_steps: int) -> Task:
  del data, total_steps
  t = config.task_config
  size = (t.height, _width_for(t))
  visualize.image_size(t.style_image, 'task_config.style_image')
  content = visualize.load_image(t.content_image, size, 3)[None]
  style = visualize.load_image(t.style_image, size, 3)[None]
  model, variables = _network(t)
  if variables is None:
    init = jax.jit(model.init, compiler_options=steps.INIT_COMPILER_OPTIONS)
    variables = init(jax.random.key(config.seed), jnp.zeros((1, *size, 3)))
  layers = (t.content_layer, *t.style_layers)

  def features(x):
    return visualize.capture(model, variables, x, layers, relu=True)

  preprocess = lambda x: transfer_models.preprocess_input(jnp.asarray(x), 'caffe')  # noqa: E731
  content_pre, style_pre = preprocess(content), preprocess(style)
  n_style = len(t.style_layers)

  def loss_parts(x, content_target, style_targets):
    f = features(x)
    content_loss = jnp.sum(jnp.square(f[t.content_layer][0] - content_target))
    style_loss = 0.0
    for name in t.style_layers:
      h, w, c = f[name].shape[1:]
      style_loss += jnp.sum(jnp.square(style_targets[name] - _gram(f[name][0]))) / (
          4.0 * c**2 * (h * w)**2)
    tv = total_variation(x)
    total = (t.content_weight * content_loss + t.style_weight / n_style * style_loss +
             t.tv_weight * tv)
    return total, {'content_loss': content_loss, 'style_loss': style_loss, 'tv_loss': tv}

  opt = optax.lbfgs(memory_size=t.memory_size)

  def init(rng, batch):
    del rng, batch
    c = features(content_pre)[t.content_layer][0]
    s = features(style_pre)
    image = jnp.asarray(content_pre, jnp.float32)
    return StyleState(step=jnp.zeros((), jnp.int32), params=image, opt_state=opt.init(image),
                      content_target=c,
                      style_targets={name: _gram(s[name][0]) for name in t.style_layers})

  def train_step(state, batch):
    del batch
    value_fn = lambda x: loss_parts(x, state.content_target, state.style_targets)[0]  # noqa: E731
    # A new round starts L-BFGS afresh, as the book's each call of optim() does.
    fresh = opt.init(state.params)
    restart = state.step % t.restart_every == 0
    opt_state = jax.tree.map(lambda a, b: jnp.where(restart, a, b), fresh, state.opt_state)
    (value, parts), grad = jax.value_and_grad(
        lambda x: loss_parts(x, state.content_target, state.style_targets), has_aux=True)(
            state.params)
    updates, opt_state = opt.update(grad, opt_state, state.params, value=value, grad=grad,
                                    value_fn=value_fn)
    image = optax.apply_updates(state.params, updates)
    return state.replace(step=state.step + 1, params=image, opt_state=opt_state), {
        'loss': value, **parts}

  def artifacts(state, step):
    del step
    return {'styled': deprocess(jax.device_get(state.params))}

  return Task(init=init, train_step=train_step, params=lambda state: state.params,
              artifacts=artifacts)


def _width_for(t) -> int:
  """The book's width: the content image's, scaled to `height` rows."""
  h, w = visualize.image_size(t.content_image, 'task_config.content_image')
  return max(16, round(w * t.height / h))
