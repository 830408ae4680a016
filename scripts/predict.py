"""Class probabilities of a workdir's checkpoint on PNG/JPEG images or a .npy batch.

  python -m scripts.predict --workdir=/tmp/run --input=digit.png --input=other.png
  python -m scripts.predict --workdir=/tmp/run --input=batch.npy --output=probs.npy
Inputs are raw, as the source gave them (0-255 pixels); the run's preprocessing is applied.
"""
from absl import flags

from library import cli

_WORKDIR = flags.DEFINE_string('workdir', None, 'a training workdir')
_INPUT = flags.DEFINE_multi_string('input', None, 'image files, or one .npy batch')
_OUTPUT = flags.DEFINE_string('output', None, 'also write the outputs to this .npy')
_CHECKPOINT = flags.DEFINE_string('checkpoint', 'latest', 'latest, best, or a step number')
flags.mark_flags_as_required(['workdir', 'input'])


def main(_):
  import numpy as np  # pylint: disable=import-outside-toplevel
  from library import inference  # pylint: disable=import-outside-toplevel
  outputs = inference.predict_workdir(_WORKDIR.value, _INPUT.value, _CHECKPOINT.value)
  np.set_printoptions(precision=4, suppress=True, linewidth=120)
  names = _INPUT.value if len(_INPUT.value) == len(outputs) else range(len(outputs))
  for name, row in zip(names, outputs):
    top = int(np.argmax(row))
    print(f'{name}: class {top} ({row[top]:.4f})  {row}')
  if _OUTPUT.value:
    np.save(_OUTPUT.value, outputs)


if __name__ == '__main__':
  cli.run(main)
