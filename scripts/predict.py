"""Class probabilities of a workdir's checkpoint on PNG/JPEG images or a .npy batch, or the raw
outputs of a converted ImageNet network.

  python -m scripts.predict --workdir=/tmp/run --input=digit.png --input=other.png
  python -m scripts.predict --workdir=/tmp/run --input=batch.npy --output=probs.npy
  python -m scripts.predict --arch=vgg16 --weights=~/weights/vgg16 --input=x.npy --output=y.npy
With --workdir, inputs are raw, as the source gave them (0-255 pixels); the run's preprocessing
is applied. With --arch, x.npy is an NHWC float batch already preprocessed as the network wants
(keras.applications' preprocess_input), and y.npy gets what Keras' predict() returns: the top's
softmax probabilities (--logits: the values before the softmax) or, for weights without a top,
the feature maps.
"""
from absl import flags

from library import cli

_WORKDIR = flags.DEFINE_string('workdir', None, 'a training workdir')
_INPUT = flags.DEFINE_multi_string('input', None, 'image files, or one .npy batch')
_OUTPUT = flags.DEFINE_string('output', None, 'also write the outputs to this .npy')
_CHECKPOINT = flags.DEFINE_string('checkpoint', 'latest', 'latest, best, or a step number')
_ARCH = flags.DEFINE_string('arch', None, 'vgg16, vgg19, resnet50 or inception_v3 (with --weights)')
_WEIGHTS = flags.DEFINE_string('weights', None, 'a folder written by scripts.convert_weights')
_LOGITS = flags.DEFINE_bool('logits', False, "with --arch and a top: the logits, not Keras' "
                            'softmax probabilities')
flags.mark_flags_as_required(['input'])
flags.register_multi_flags_validator(
    ['workdir', 'arch', 'weights'],
    lambda f: bool(f['workdir']) != bool(f['arch'] and f['weights']) and not (
        f['workdir'] and (f['arch'] or f['weights'])),
    message='give either --workdir, or --arch with --weights')


def main(_):
  import numpy as np  # pylint: disable=import-outside-toplevel
  if _ARCH.value:
    from projects.transfer import convert  # pylint: disable=import-outside-toplevel
    if len(_INPUT.value) != 1 or not _OUTPUT.value:
      raise flags.ValidationError('with --arch, give one --input=x.npy and --output=y.npy')
    convert.predict_files(_ARCH.value, _WEIGHTS.value, _INPUT.value[0], _OUTPUT.value,
                          logits=_LOGITS.value)
    return
  from library import inference  # pylint: disable=import-outside-toplevel
  outputs = inference.predict_workdir(_WORKDIR.value, _INPUT.value, _CHECKPOINT.value)
  names = _INPUT.value if len(_INPUT.value) == len(outputs) else range(len(outputs))
  for name, row in zip(names, outputs):
    print(f'{name}: {inference.describe(row)}')
  if _OUTPUT.value:
    np.save(_OUTPUT.value, outputs)


if __name__ == '__main__':
  cli.run(main)
