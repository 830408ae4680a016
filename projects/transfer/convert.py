"""Converting pretrained ImageNet networks into our weight folders, and loading them back.

  python -m scripts.convert_weights --arch=vgg16 --input=vgg16.h5 --output=~/weights/vgg16
  python -m scripts.predict --arch=vgg16 --weights=~/weights/vgg16 --input=x.npy --output=y.npy

Inputs: Keras files (.h5 from `keras.applications` or `model.save`, .keras, .weights.h5) for all
four architectures; safetensors with our own keys (what we write) for all four, or with
torchvision's VGG16/VGG19 state-dict keys (exported from PyTorch). torchvision's ResNet50 is
ResNet v1.5 (stride in the 3x3 convolution), another network than Keras' v1: refused by name.
"""
import os

import jax
import jax.numpy as jnp
import numpy as np

from library import weights
from library.errors import UserError
from projects.transfer import models

INPUT_SIZE = {'vgg16': 224, 'vgg19': 224, 'resnet50': 224, 'inception_v3': 299}
# keras.applications' own preprocessing of each network; torchvision weights want 'torch'.
PREPROCESS = {'vgg16': 'caffe', 'vgg19': 'caffe', 'resnet50': 'caffe', 'inception_v3': 'tf'}


def check_arch(arch: str) -> None:
  if arch not in models.ARCHITECTURES:
    raise UserError(f'arch={arch!r} is not one of {", ".join(models.ARCHITECTURES)}')


def target_shapes(model, size: int) -> dict[str, tuple]:
  """{flat path: shape} of a network's variables at size x size RGB inputs."""
  return weights.target_shapes(model, (size, size, 3))


def convert(arch: str, input_path: str, output_dir: str) -> dict:
  """Converts one file into a weight folder; returns its info.json dict."""
  check_arch(arch)
  weights.refuse_pickle(input_path)
  lower = input_path.lower()
  if lower.endswith(('.h5', '.keras')):
    layers = weights.read_keras(input_path)
    include_top = 'predictions' in layers
    model = models.make_base(arch, include_top=include_top)
    flat = weights.keras_to_flat(layers, target_shapes(model, INPUT_SIZE[arch]))
    source_format, preprocess = 'keras', PREPROCESS[arch]
  elif lower.endswith('.safetensors'):
    source = weights.read_safetensors(input_path)
    if any(k.startswith('features.') for k in source):
      source, source_format, preprocess = torchvision_to_ours(arch, source), 'torchvision', 'torch'
    else:
      source_format, preprocess = 'ours', PREPROCESS[arch]
    include_top = any(k.startswith('params/predictions/') for k in source)
    model = models.make_base(arch, include_top=include_top)
    flat = weights.fit_flat(source, target_shapes(model, INPUT_SIZE[arch]),
                            name=f'{input_path} (as {arch})')
  else:
    raise UserError(f'--input={input_path}: use a Keras .h5/.keras file or a .safetensors file')
  info = dict(arch=arch, include_top=include_top, source=os.path.abspath(input_path),
              source_format=source_format, preprocess=preprocess,
              parameters=int(sum(v.size for k, v in flat.items() if k.startswith('params/'))),
              variables=int(sum(v.size for v in flat.values())))
  weights.save_folder(output_dir, flat, info)
  return info


def torchvision_to_ours(arch: str, source: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """torchvision VGG16/VGG19 state-dict arrays -> our keys and layouts (HWIO, NHWC flatten)."""
  if arch not in ('vgg16', 'vgg19'):
    raise UserError(f'torchvision weights are read for vgg16 and vgg19 only, not {arch}: '
                    "torchvision's resnet50 is ResNet v1.5 and its inception_v3 differs from "
                    "Keras'; convert those from Keras files")
  convs = {'vgg16': (2, 2, 3, 3, 3), 'vgg19': (2, 2, 4, 4, 4)}[arch]
  out, index = {}, 0
  for block, count in enumerate(convs, 1):
    for i in range(1, count + 1):
      name = f'block{block}_conv{i}'
      for theirs, ours, fix in ((f'features.{index}.weight', 'kernel', (2, 3, 1, 0)),
                                (f'features.{index}.bias', 'bias', None)):
        if theirs not in source:
          raise UserError(f'the safetensors file has no {theirs}: not torchvision {arch}')
        out[f'params/{name}/{ours}'] = source[theirs].transpose(fix) if fix else source[theirs]
      index += 2   # conv, relu
    index += 1     # max pool
  extra = sorted(set(k for k in source if k.startswith('features.')) -
                 {f'features.{j}.{w}' for j in range(index) for w in ('weight', 'bias')})
  if extra:
    raise UserError(f'the safetensors file has {", ".join(extra[:4])}, which torchvision {arch} '
                    'lacks: another architecture')
  if 'classifier.0.weight' in source:
    w = source['classifier.0.weight']   # (4096, 512*7*7), inputs flattened as C, H, W
    if w.shape[1] != 512 * 7 * 7:
      raise UserError(f'classifier.0.weight is {w.shape}, not (4096, 25088): not torchvision VGG')
    out['params/fc1/kernel'] = w.reshape(w.shape[0], 512, 7, 7).transpose(2, 3, 1, 0).reshape(
        -1, w.shape[0])
    out['params/fc1/bias'] = source['classifier.0.bias']
    for theirs, ours in (('classifier.3', 'fc2'), ('classifier.6', 'predictions')):
      out[f'params/{ours}/kernel'] = source[f'{theirs}.weight'].T
      out[f'params/{ours}/bias'] = source[f'{theirs}.bias']
  return out


def load(arch: str, directory: str, preprocess: str = 'none'):
  """(model, variables) of a converted weight folder; inputs already preprocessed by default."""
  check_arch(arch)
  flat, info = weights.read_folder(directory)
  if info.get('arch', arch) != arch:
    raise UserError(f'{directory} holds {info["arch"]} weights, not {arch}')
  include_top = any(k.startswith('params/predictions/') for k in flat)
  model = models.make_base(arch, include_top=include_top, preprocess=preprocess)
  flat = weights.fit_flat(flat, target_shapes(model, INPUT_SIZE[arch]),
                          name=f'{directory} (as {arch})')
  return model, weights.unflatten(flat)


def predict(model, variables, images_NxHxWxC: np.ndarray, batch_size: int = 32) -> np.ndarray:
  """The network's raw outputs (logits, or features without the top), in batches."""
  apply = jax.jit(lambda v, x: model.apply(v, x, train=False))
  outputs = [np.asarray(apply(variables, jnp.asarray(images_NxHxWxC[i:i + batch_size],
                                                     jnp.float32)))
             for i in range(0, len(images_NxHxWxC), batch_size)]
  return np.concatenate(outputs)


def as_keras_outputs(outputs: np.ndarray, include_top: bool, logits: bool) -> np.ndarray:
  """What Keras' predict() returns: a top's softmax probabilities (keras.applications'
  classifier_activation), or with `logits` the values before it; features without a top."""
  if not include_top or logits:
    return outputs
  shifted = np.exp(outputs - outputs.max(axis=-1, keepdims=True))
  return shifted / shifted.sum(axis=-1, keepdims=True)


def predict_files(arch: str, weights_dir: str, input_npy: str, output_npy: str,
                  logits: bool = False) -> np.ndarray:
  """scripts.predict --arch: a converted network's outputs on an .npy batch of images, as
  Keras' predict() gives them (probabilities for a top; `logits` for the values before)."""
  if not os.path.exists(input_npy):
    raise UserError(f'--input={input_npy} does not exist')
  try:
    images = np.load(input_npy, allow_pickle=False)
  except ValueError as e:
    raise UserError(f'--input={input_npy} is not a plain .npy array ({e})') from None
  if images.ndim != 4 or images.shape[-1] != 3:
    raise UserError(f'--input={input_npy} has shape {images.shape}; expected NHWC images '
                    '(N, height, width, 3)')
  model, variables = load(arch, weights_dir)
  if model.include_top and images.shape[1:3] != (INPUT_SIZE[arch],) * 2:
    raise UserError(f'{arch} with its top takes {INPUT_SIZE[arch]}x{INPUT_SIZE[arch]} images, '
                    f'not {images.shape[1]}x{images.shape[2]}')
  outputs = as_keras_outputs(predict(model, variables, images), model.include_top, logits)
  np.save(output_npy, outputs)
  return outputs
