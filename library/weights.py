"""Pretrained weights in and out: Keras files, safetensors, our weight folders and workdirs.

Our interchange format is a folder with `weights.safetensors` (flat keys 'params/<layer path>/
<name>' and 'batch_stats/...', float arrays only: nothing in it can run code) and `info.json`
(architecture, source file). Keras files are read as HDF5 data; pickled formats (.pt, .pth,
.bin, .ckpt, .pkl) are refused.

Keras layers map to ours by name: a Keras layer `block1_conv1` is our module `block1_conv1`
(under `prefix`). Keras' automatic names (`conv2d_95`, `batch_normalization_3`) depend on how
many layers the saving session had made, so they are renumbered from 0 in creation order.
Per layer, Keras' weights are in the order kernel, gamma, beta/bias, moving mean, moving
variance; ours are kernel, scale, bias, mean, var.
"""
import io
import json
import os
import re
import zipfile

import flax.traverse_util
import numpy as np

from library.errors import UserError

IMAGENET = 'imagenet:'
# Where `imagenet:<name>` is converted to, once: the folder scripts.convert_weights used to be
# run by hand to make (~/weights/vgg16_notop), so such a folder is reused.
NAMED_FOLDER = '~/weights'
# The converter of Keras' ImageNet files: it knows the architectures, which live with their
# models in projects/, so the library names it instead of importing it.
CONVERTER = 'projects.transfer.convert'
PICKLE_SUFFIXES = ('.pt', '.pth', '.bin', '.ckpt', '.pkl', '.pickle')
WEIGHTS_FILE, INFO_FILE = 'weights.safetensors', 'info.json'
_OURS_ORDER = ('kernel', 'scale', 'bias', 'mean', 'var')
_KERAS_NAMES = {'kernel': 'kernel', 'bias': 'bias', 'gamma': 'scale', 'beta': 'bias',
                'moving_mean': 'mean', 'moving_variance': 'var'}
_AUTO_NAME = re.compile(r'^(conv2d|batch_normalization|dense|conv1d|embedding)(?:_(\d+))?$')


def imagenet_names() -> tuple[str, ...]:
  from library.data import fetch  # pylint: disable=import-outside-toplevel
  return tuple(f'{IMAGENET}{n}' for n, e in fetch.REGISTRY.items() if e.arch)


def resolve(path: str) -> str:
  """A weights path as the user gives it: `imagenet:vgg16_notop` (any of imagenet_names()) is
  Keras' ImageNet file, fetched on first use (library/data/fetch.py) and converted once into
  the weight folder ~/weights/vgg16_notop, which is returned; any other path, ~ expanded."""
  if not path.startswith(IMAGENET):
    return os.path.expanduser(path)
  import importlib  # pylint: disable=import-outside-toplevel
  from library.data import fetch  # pylint: disable=import-outside-toplevel
  name = path[len(IMAGENET):]
  entry = fetch.REGISTRY.get(name)
  if entry is None or not entry.arch:
    raise UserError(f'{path!r} names no ImageNet weights; choose from '
                    f'{", ".join(imagenet_names())}')
  folder = os.path.join(os.path.expanduser(NAMED_FOLDER), name)
  if not os.path.exists(os.path.join(folder, WEIGHTS_FILE)):
    (h5,) = fetch.fetch(name)
    print(f'converting {h5} into {folder} (first use only)', flush=True)
    importlib.import_module(CONVERTER).convert(entry.arch, h5, folder)
  return folder


def refuse_pickle(path: str) -> None:
  if path.lower().endswith(PICKLE_SUFFIXES):
    raise UserError(
        f'{path} is a pickle, which can run arbitrary code when loaded; we do not read it. '
        'Export the tensors with safetensors instead: in PyTorch, '
        '`safetensors.torch.save_file(model.state_dict(), "model.safetensors")`')


def _require(path: str) -> None:
  if not os.path.exists(os.path.expanduser(path)):
    raise UserError(f'weights file {path} does not exist')


# ---------------------------------------------------------------- Keras files

def read_keras(path: str) -> dict[str, list[tuple[str | None, np.ndarray]]]:
  """{layer name: [(weight name or None, array), ...]} of a Keras .keras/.h5/.weights.h5 file.

  Layers without weights are left out; names are renumbered as the module docstring says.
  """
  import h5py  # pylint: disable=import-outside-toplevel
  refuse_pickle(path)
  _require(path)
  path = os.path.expanduser(path)
  if zipfile.is_zipfile(path):
    with zipfile.ZipFile(path) as z:
      if 'model.weights.h5' not in z.namelist():
        raise UserError(f'{path} is a zip without model.weights.h5: not a Keras .keras file')
      data = io.BytesIO(z.read('model.weights.h5'))
    with h5py.File(data, 'r') as f:
      layers = _read_keras3(f)
  else:
    try:
      f = h5py.File(path, 'r')
    except OSError as e:
      raise UserError(f'{path} is neither a Keras .keras zip nor an HDF5 file ({e})') from None
    with f:
      if 'layer_names' in f.attrs or 'model_weights' in f:
        layers = _read_legacy(f['model_weights'] if 'model_weights' in f else f)
      elif 'layers' in f:
        layers = _read_keras3(f)
      else:
        raise UserError(f'{path} is an HDF5 file but not Keras weights (no layer_names '
                        'attribute, no model_weights or layers group)')
  return _renumber({k: v for k, v in layers.items() if v})


def _text(value) -> str:
  return value.decode() if isinstance(value, bytes) else str(value)


def _read_legacy(group) -> dict:
  """Keras 2 / tf.keras layout (also Keras 3's model.save('x.h5')): names in attributes."""
  layers = {}
  for layer in group.attrs['layer_names']:
    layer = _text(layer)
    for full in group[layer].attrs.get('weight_names', []):
      full = _text(full)
      # 'block1_conv1/kernel:0'; a nested model stores 'vgg16/block1_conv1/kernel:0'
      parts = full.split(':')[0].split('/')
      owner = parts[-2] if len(parts) > 1 else layer
      layers.setdefault(owner, []).append((parts[-1], np.asarray(group[layer][full])))
  return layers


def _read_keras3(f) -> dict:
  """Keras 3 layout: layers/<key>/vars/<i>, the layer's name in the vars group's attributes."""
  layers = {}

  def walk(group):
    for key in group:
      g = group[key]
      if 'layers' in g:   # a nested model
        walk(g['layers'])
      if 'vars' in g and len(g['vars']):
        name = _text(g['vars'].attrs.get('name', key))
        layers[name] = [(None, np.asarray(g['vars'][i]))
                        for i in sorted(g['vars'], key=int)]

  walk(f['layers'])
  return layers


def _renumber(layers: dict) -> dict:
  groups = {}
  for name in layers:
    m = _AUTO_NAME.match(name)
    if m:
      groups.setdefault(m.group(1), []).append((int(m.group(2) or 0), name))
  renamed = {}
  for name, weights in layers.items():
    m = _AUTO_NAME.match(name)
    if m:
      rank = sorted(groups[m.group(1)]).index((int(m.group(2) or 0), name))
      name = f'{m.group(1)}_{rank}'
    renamed[name] = weights
  return renamed


def keras_to_flat(layers: dict, target: dict[str, tuple], prefix: str = '') -> dict:
  """Keras layers -> {our flat path: array} for the paths (and shapes) of `target`.

  target: {'params/<prefix>/<layer>/<name>' or 'batch_stats/...': shape} of our model.
  Every layer of the file must land, every target leaf must be filled, shapes must agree;
  otherwise one error lists what is missing, extra or misshaped.
  """
  ours = {}   # our layer path (without collection) -> {leaf name: (full path, shape)}
  for full, shape in target.items():
    collection, rest = full.split('/', 1)
    layer, leaf = rest.rsplit('/', 1)
    del collection
    ours.setdefault(layer, {})[leaf] = (full, tuple(shape))
  pre = prefix.strip('/') + '/' if prefix.strip('/') else ''
  out, missing, extra, misshaped = {}, [], [], []
  for name, weights in layers.items():
    layer = pre + name
    if layer not in ours:
      extra.append(name)
      continue
    leaves = ours.pop(layer)
    order = [leaf for leaf in _OURS_ORDER if leaf in leaves]
    if all(n is not None for n, _ in weights):
      named = [(_KERAS_NAMES.get(n, n), a) for n, a in weights]
    elif len(weights) == len(order):
      named = list(zip(order, (a for _, a in weights)))
    else:
      misshaped.append(f'{name} has {len(weights)} arrays, ours {len(order)} ({", ".join(order)})')
      continue
    for leaf, array in named:
      if leaf not in leaves:
        misshaped.append(f'{name} has {leaf!r} that our {layer} lacks')
        continue
      full, shape = leaves.pop(leaf)
      if tuple(array.shape) != shape:
        misshaped.append(f'{name}/{leaf} is {tuple(array.shape)}, ours {shape}')
      out[full] = array
    missing += [full for full, _ in leaves.values()]
  missing += [full for leaves in ours.values() for full, _ in leaves.values()
              if full.split('/', 1)[1].startswith(pre)]
  _raise_mismatch('the Keras file', missing, extra, misshaped)
  return out


def _raise_mismatch(source: str, missing, extra, misshaped) -> None:
  if not (missing or extra or misshaped):
    return
  def few(items):
    return ', '.join(items[:6]) + (f' and {len(items) - 6} more' if len(items) > 6 else '')
  parts = []
  if missing:
    parts.append(f'missing {len(missing)} (ours, not in the file): {few(sorted(missing))}')
  if extra:
    parts.append(f'extra {len(extra)} (in the file, not ours): {few(sorted(extra))}')
  if misshaped:
    parts.append(f'misshaped {len(misshaped)}: {few(misshaped)}')
  raise UserError(f'{source} does not fit this model (another architecture, or include_top '
                  f'differs?): ' + '; '.join(parts))


# ---------------------------------------------------------------- our weight folders

def flat_variables(variables: dict) -> dict[str, np.ndarray]:
  """{'params': ..., 'batch_stats': ...} -> {'params/a/b/kernel': array}."""
  return {k: np.asarray(v) for k, v in flax.traverse_util.flatten_dict(
      dict(variables), sep='/').items()}


def flat_variables_abstract(variables: dict) -> dict:
  """Like flat_variables, for shape-only trees (jax.eval_shape's)."""
  return dict(flax.traverse_util.flatten_dict(dict(variables), sep='/'))


def target_shapes(model, input_shape: tuple[int, ...]) -> dict[str, tuple]:
  """{flat path: shape} of a linen model's variables for inputs of input_shape (one example,
  without the batch axis), without computing any (jax.eval_shape)."""
  import jax  # pylint: disable=import-outside-toplevel
  example = jax.ShapeDtypeStruct((1, *input_shape), np.float32)
  abstract = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), example)
  return {k: tuple(v.shape) for k, v in flat_variables_abstract(abstract).items()}


def model_variables(model, path: str, input_shape: tuple[int, ...]) -> dict:
  """Every variable of `model` from `path` (as load_for reads it), as a nested dict."""
  return unflatten(load_for(path, target_shapes(model, input_shape)))


def unflatten(flat: dict[str, np.ndarray]) -> dict:
  """{'params/a/kernel': array} -> {'params': {'a': {'kernel': array}}}."""
  return flax.traverse_util.unflatten_dict(flat, sep='/')


def save_folder(directory: str, flat: dict[str, np.ndarray], info: dict) -> None:
  """Writes weights.safetensors + info.json into a new folder, atomically (temp + rename)."""
  from safetensors.numpy import save_file  # pylint: disable=import-outside-toplevel
  directory = os.path.expanduser(directory)
  if os.path.exists(os.path.join(directory, WEIGHTS_FILE)):
    raise UserError(f'{directory} already holds {WEIGHTS_FILE}; choose another --output')
  parent = os.path.dirname(os.path.abspath(directory))
  os.makedirs(parent, exist_ok=True)
  tmp = os.path.join(parent, f'.{os.path.basename(directory)}.tmp-{os.getpid()}')
  os.makedirs(tmp, exist_ok=True)
  save_file({k: np.ascontiguousarray(v, np.float32) for k, v in flat.items()},
            os.path.join(tmp, WEIGHTS_FILE))
  with open(os.path.join(tmp, INFO_FILE), 'w') as f:
    json.dump(info, f, indent=2)
  if os.path.isdir(directory) and not os.listdir(directory):
    os.rmdir(directory)
  os.rename(tmp, directory)


def read_safetensors(path: str) -> dict[str, np.ndarray]:
  from safetensors.numpy import load_file  # pylint: disable=import-outside-toplevel
  refuse_pickle(path)
  _require(path)
  try:
    return load_file(os.path.expanduser(path))
  except Exception as e:  # pylint: disable=broad-except  (safetensors raises its own types)
    raise UserError(f'{path} is not a readable safetensors file ({e})') from None


def read_folder(path: str) -> tuple[dict[str, np.ndarray], dict]:
  """(flat arrays, info) of a folder written by save_folder, or of a bare .safetensors file;
  `imagenet:<name>` as resolve() reads it."""
  path = resolve(path)
  if os.path.isdir(path):
    if not os.path.exists(os.path.join(path, WEIGHTS_FILE)):
      raise UserError(f'{path} has no {WEIGHTS_FILE}: not a folder written by '
                      'scripts.convert_weights')
    info = {}
    if os.path.exists(os.path.join(path, INFO_FILE)):
      with open(os.path.join(path, INFO_FILE)) as f:
        info = json.load(f)
    return read_safetensors(os.path.join(path, WEIGHTS_FILE)), info
  return read_safetensors(path), {}


def _under(full: str, pre: str) -> str | None:
  """'params/conv_base/block1_conv1/kernel' -> 'block1_conv1/kernel' (None if not under pre)."""
  rest = full.split('/', 1)[1]
  return rest[len(pre):] if rest.startswith(pre) else None


def fit_flat(source: dict[str, np.ndarray], target: dict[str, tuple], *, prefix: str = '',
             skip: str = '', name: str = 'the weights') -> dict[str, np.ndarray]:
  """Our flat arrays (keys 'params/<layer>/...') placed under `prefix` of `target`.

  skip: a regular expression over layer paths without collection ('Dense_1/kernel',
  'predictions/bias'); matching arrays of the source are dropped and matching leaves of the
  model keep their fresh initialization. Anything else missing, extra or misshaped is an error.
  """
  pre = prefix.strip('/') + '/' if prefix.strip('/') else ''
  out, extra, misshaped = {}, [], []
  for key, array in source.items():
    if '/' not in key:
      extra.append(key)
      continue
    collection, rest = key.split('/', 1)
    if skip and re.search(skip, rest):
      continue
    full = f'{collection}/{pre}{rest}'
    if full not in target:
      extra.append(key)
    elif tuple(array.shape) != tuple(target[full]):
      misshaped.append(f'{key} is {tuple(array.shape)}, ours {tuple(target[full])}')
    else:
      out[full] = array
  missing = [full for full in target if full not in out and _under(full, pre) is not None
             and not (skip and re.search(skip, _under(full, pre)))]
  _raise_mismatch(name, missing, extra, misshaped)
  if not out:
    raise UserError(f'{name} gave no parameter to this model (skip={skip!r}, prefix={prefix!r})')
  return out


def load_for(path: str, target: dict[str, tuple], *, prefix: str = '', skip: str = '') -> dict:
  """{our flat path: array} to start a model from: a weights folder, a .safetensors file, a
  Keras file, a training workdir of ours (its latest checkpoint), or `imagenet:<name>`."""
  path = resolve(path)
  refuse_pickle(path)
  if os.path.isdir(os.path.join(path, 'checkpoints')):
    source = workdir_variables(path)
  elif path.endswith(('.h5', '.keras')):
    layers = read_keras(path)
    pre = prefix.strip('/') + '/' if prefix.strip('/') else ''
    if skip:
      layers = {k: v for k, v in layers.items() if not re.search(skip, k)}
      target = {k: v for k, v in target.items()
                if _under(k, pre) is None or not re.search(skip, _under(k, pre))}
    return keras_to_flat(layers, target, prefix)
  else:
    if not os.path.exists(path):
      raise UserError(f'model_init.path={path} does not exist')
    source, _ = read_folder(path)
  return fit_flat(source, target, prefix=prefix, skip=skip, name=f'model_init.path={path}')


def workdir_variables(workdir: str) -> dict[str, np.ndarray]:
  """Parameters and model state of a workdir's latest checkpoint, as flat arrays."""
  from library import checkpoints  # pylint: disable=import-outside-toplevel
  state = checkpoints.restore_latest_raw(os.path.join(workdir, 'checkpoints'))
  if state is None:
    raise UserError(f'{workdir}/checkpoints holds no checkpoint')
  variables = {'params': state['params'], **dict(state.get('model_state') or {})}
  return flat_variables(variables)


def start_values(model_init, task, state, param_init: dict | None = None,
                 task_name: str = '') -> dict:
  """The values a run starts from, named as task.variables names them: the data's (GloVe
  embeddings: Datasets.param_init) and model_init's (a weights file or a run's, its prefix and
  skipped names), read for one model's `state`. The one start of a single run
  (train.start_from) and of members (each given the same values)."""
  values = dict(param_init or {})
  if model_init.path:
    if task.variables is None:
      raise UserError(f'task={task_name!r} cannot start from model_init')
    target = {k: tuple(v.shape) for k, v in flat_variables_abstract(
        task.variables(state)).items()}
    values.update(load_for(model_init.path, target, prefix=model_init.prefix,
                           skip=model_init.skip))
  if values and task.with_params is None:
    raise UserError(f'task={task_name!r} cannot start from given parameter values')
  return values
