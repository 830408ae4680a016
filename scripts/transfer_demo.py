"""The offline transfer-learning demo (projects/transfer/demo.py), in one command.

  python -m scripts.transfer_demo --workdir=/tmp/transfer --seeds=5

Pretrains the 5.1 convnet on the offline digits 0-4, then learns digits 5-9 from 100 labelled
examples three ways (frozen pretrained base, fine-tuned, from scratch) for each seed. Writes
WORKDIR/results.md (the table), results.json and accuracy.png. A rerun reads back finished
runs and resumes unfinished ones.
"""
from absl import flags

from library import cli

_WORKDIR = flags.DEFINE_string('workdir', None, 'runs, table and plot go here')
_SEEDS = flags.DEFINE_integer('seeds', 5, 'seeds (each its own 100 examples) per recipe')
_SMOKE = flags.DEFINE_bool('smoke', False, 'a few steps per run (what the tests run)')
_SET = flags.DEFINE_multi_string('set', [], 'key=value for every run after pretraining')
flags.mark_flags_as_required(['workdir'])


def main(_):
  from configs.transfer import digits  # pylint: disable=import-outside-toplevel
  from projects.transfer import demo  # pylint: disable=import-outside-toplevel
  cli.quiet_unless_main_process()
  demo.run(digits.get_config, _WORKDIR.value, _SEEDS.value, _SMOKE.value, tuple(_SET.value))


if __name__ == '__main__':
  cli.run(main)
