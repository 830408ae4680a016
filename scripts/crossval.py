"""Cross-validates a config: every fold (or seed) of config.crossval trained as one program.

  python -m scripts.crossval --config=configs/mlp/boston_kfold.py:embedded --workdir=/tmp/kfold

Writes W/results.json (per-fold and mean metrics, train_seconds with compilation included),
W/history.json (per-epoch, per-fold curves), curves.png, mean_validation.png, metrics.jsonl
and TensorBoard events of the fold means.
"""
import json

from library import cli

_FLAGS = cli.RunFlags('results and plots go here')


def main(_):
  from library import crossval, parallel  # pylint: disable=import-outside-toplevel
  _FLAGS.start()
  results = crossval.run_crossval(_FLAGS.config, _FLAGS.workdir, start_over=_FLAGS.start_over)
  if parallel.is_main_process():
    for fold in results['folds']:
      print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in fold.items()}))
    print(json.dumps({'mean': results['mean'], 'train_seconds': round(results['train_seconds'], 3),
                      'compile_seconds': round(results['compile_seconds'], 3)}))
    print(f'results.json, history.json and plots are in {_FLAGS.workdir}')


if __name__ == '__main__':
  cli.run(main)
