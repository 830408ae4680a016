"""Cross-validates a config: every fold (or seed) of config.crossval trained as one program.

  python -m scripts.crossval --config=configs/mlp/boston_kfold.py:embedded --workdir=/tmp/kfold

Writes W/results.json (per-fold and mean metrics, train_seconds with compilation included),
W/history.json (per-epoch, per-fold curves), curves.png, mean_validation.png, metrics.jsonl
and TensorBoard events of the fold means.
"""
import json

from absl import flags
from ml_collections import config_flags

from library import cli

_CONFIG = config_flags.DEFINE_config_file('config', None, 'config file[:variant]',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'results and plots go here')
_START_OVER = flags.DEFINE_bool('start_over', False,
                                'move a previous run in --workdir aside and start afresh')
_MULTIHOST = flags.DEFINE_bool('multihost', False,
                               'initialise jax.distributed (auto-detected on TPU pods, SLURM)')
flags.mark_flags_as_required(['config', 'workdir'])


def main(_):
  from library import crossval, parallel  # pylint: disable=import-outside-toplevel
  parallel.initialize_distributed(force=_MULTIHOST.value)
  cli.quiet_unless_main_process()
  results = crossval.run_crossval(_CONFIG.value, _WORKDIR.value, start_over=_START_OVER.value)
  if parallel.is_main_process():
    for fold in results['folds']:
      print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in fold.items()}))
    print(json.dumps({'mean': results['mean'], 'train_seconds': round(results['train_seconds'], 3),
                      'compile_seconds': round(results['compile_seconds'], 3)}))
    print(f'results.json, history.json and plots are in {_WORKDIR.value}')


if __name__ == '__main__':
  cli.run(main)
