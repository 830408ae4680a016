"""Cross-validates a config: every member of config.members (folds, seeds, values) trained as
one vmapped state by the one loop (the same as scripts.train on that config).

  python -m scripts.crossval --config=configs/mlp/boston_kfold.py:embedded --workdir=/tmp/kfold

Writes W/results.json (per-member rows, their mean and std; for kfold, stratified_kfold and loo
the out-of-fold score: every metric over all the rows, each from the fold that held it out),
W/history.json (per-epoch, per-member curves), curves.png, mean_validation.png, metrics.jsonl
and TensorBoard events of the member means, checkpoints (a rerun resumes, bitwise).
"""
import json

from library import cli

_FLAGS = cli.RunFlags('results, checkpoints and plots go here')


def main(_):
  from library import members, parallel, train  # pylint: disable=import-outside-toplevel
  from library.errors import UserError  # pylint: disable=import-outside-toplevel
  _FLAGS.start()
  if not members.enabled(_FLAGS.config):
    raise UserError(f'members.scheme is empty: set one of {", ".join(members.SCHEMES)} '
                    '(or values of members.learning_rate, weight_decay, dropout_rate, l1, '
                    'l2), or train one model with scripts.train')
  results = train.train_and_evaluate(_FLAGS.config, _FLAGS.workdir, start_over=_FLAGS.start_over)
  if parallel.is_main_process():
    for row in results['members']:
      print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}))
    print(json.dumps({'mean': results['mean'], 'run_seconds': round(results['run_seconds'], 3),
                      'train_seconds': round(results['train_seconds'], 3)}))
    for row in results.get('out_of_fold', ()):   # every row once, by the fold that held it out
      print(json.dumps({'out_of_fold': {k: round(v, 4) for k, v in row.items()}}))
    print(f'results.json, history.json and plots are in {_FLAGS.workdir}')


if __name__ == '__main__':
  cli.run(main)
