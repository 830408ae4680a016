"""Converts pretrained ImageNet weights into a weight folder our models and configs load.

  python -m scripts.convert_weights --arch=vgg16 --input=vgg16.h5 --output=~/weights/vgg16

--input: a Keras file (.h5 as keras.applications downloads or model.save writes, .keras,
.weights.h5) or a .safetensors file (our keys, or torchvision VGG16/VGG19 keys). Pickled
PyTorch files (.pt, .pth) are refused. Every tensor must land: a missing, extra or misshaped
one is an error naming it. Writes OUTPUT/weights.safetensors and OUTPUT/info.json; an OUTPUT
that already holds weights is left alone.
"""
from absl import flags

from library import cli

_ARCH = flags.DEFINE_string('arch', None, 'vgg16, vgg19, resnet50 or inception_v3')
_INPUT = flags.DEFINE_string('input', None, 'the weights file to convert')
_OUTPUT = flags.DEFINE_string('output', None, 'the folder to write')
flags.mark_flags_as_required(['arch', 'input', 'output'])


def main(_):
  import json  # pylint: disable=import-outside-toplevel
  from projects.transfer import convert  # pylint: disable=import-outside-toplevel
  info = convert.convert(_ARCH.value, _INPUT.value, _OUTPUT.value)
  print(json.dumps(info, indent=2))


if __name__ == '__main__':
  cli.run(main)
