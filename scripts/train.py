"""Trains a config; rerunning the same command resumes from the workdir's latest checkpoint.

  python -m scripts.train --config=configs/convnets/mnist_convnet.py:embedded \
      --workdir=/tmp/run --config.optimizer.learning_rate=1e-3
"""
import json

from absl import flags
from ml_collections import config_flags

from library import cli

_CONFIG = config_flags.DEFINE_config_file('config', None, 'config file[:variant]',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'checkpoints, metrics and plots go here')
_START_OVER = flags.DEFINE_bool('start_over', False,
                                'move a previous run in --workdir aside and start afresh')
_MULTIHOST = flags.DEFINE_bool('multihost', False,
                               'initialise jax.distributed (auto-detected on TPU pods, SLURM)')
flags.mark_flags_as_required(['config', 'workdir'])


def main(_):
  from library import parallel, train  # pylint: disable=import-outside-toplevel
  parallel.initialize_distributed(force=_MULTIHOST.value)
  cli.quiet_unless_main_process()
  results = train.train_and_evaluate(_CONFIG.value, _WORKDIR.value, start_over=_START_OVER.value)
  if parallel.is_main_process():
    print(json.dumps({k: results[k] for k in ('test', 'validation', 'steps', 'train_seconds')
                      if k in results}))
    print(f'results, history.png and TensorBoard events are in {_WORKDIR.value}')


if __name__ == '__main__':
  cli.run(main)
