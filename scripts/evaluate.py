"""Evaluates a workdir's checkpoint on a split of the data it was trained on.

  python -m scripts.evaluate --workdir=/tmp/run --split=test --checkpoint=latest

On any number of devices, and on several hosts as train is launched (README, "Launching on
several hosts"): the checkpoint is read onto this run's devices, whatever count wrote it.
"""
import json

from absl import flags

from library import cli

_WORKDIR = flags.DEFINE_string('workdir', None, 'a training workdir')
_SPLIT = flags.DEFINE_string('split', 'test', 'train, validation or test')
_CHECKPOINT = flags.DEFINE_string('checkpoint', 'latest', 'latest, best, or a step number')
flags.mark_flags_as_required(['workdir'])


def main(_):
  from library import inference, parallel  # pylint: disable=import-outside-toplevel
  parallel.initialize_distributed()
  cli.quiet_unless_main_process()
  print(json.dumps(inference.evaluate_workdir(_WORKDIR.value, _SPLIT.value, _CHECKPOINT.value)))


if __name__ == '__main__':
  cli.run(main)
