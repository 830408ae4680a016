"""The offline transfer-learning demo: pretrain on digits 0-4, learn 5-9 from 100 examples.

One pretraining run, then per seed three runs (configs/transfer/digits.py): the pretrained
convolutions frozen under a fresh dense head; that run fine-tuned further, every layer, at a
lower learning rate (book 5.3's two steps); the same network from scratch. Each seed draws its
own 100 training examples; the three recipes of a seed see the same ones. Writes results.json,
results.md (the table) and accuracy.png.
"""
import json
import os

import numpy as np

from library import config as config_lib, plots, train
from library.errors import UserError

RECIPES = ('frozen', 'finetune', 'scratch')


def _train(config, workdir: str) -> dict:
  """Trains, or reads back a run that finished before (a rerun resumes where it stopped)."""
  done = os.path.join(workdir, 'results.json')
  if os.path.exists(done):
    with open(done) as f:
      return json.load(f)
  return train.train_and_evaluate(config, workdir)


def run(get_config, workdir: str, seeds: int, smoke: bool = False,
        overrides: tuple[str, ...] = ()) -> dict:
  if seeds < 1:
    raise UserError(f'--seeds={seeds} must be >= 1')
  extra = ',smoke' if smoke else ''

  def config_of(variant: str, seed: int):
    config = get_config(variant + extra)
    config.unlock()
    config.seed = seed
    for assignment in overrides:
      config_lib.apply_override(config, assignment)
    config_lib.validate(config)
    return config

  pre_dir = os.path.join(workdir, 'pretrain')
  configs = {(r, s): config_of(r, s) for s in range(seeds) for r in RECIPES}
  pre = _train(config_of('pretrain', 0), pre_dir)
  rows = {r: [] for r in RECIPES}
  for (recipe, seed), config in configs.items():
    if recipe == 'frozen':
      config.model_init.path = pre_dir
    elif recipe == 'finetune':   # continues the frozen run (RECIPES lists frozen first)
      config.model_init.path = os.path.join(workdir, f'frozen-seed{seed}')
    result = _train(config, os.path.join(workdir, f'{recipe}-seed{seed}'))
    rows[recipe].append({'seed': seed, 'test_accuracy': result['test']['accuracy'],
                         'validation_accuracy': result['validation']['accuracy'],
                         'train_seconds': result['train_seconds']})
    print(f'{recipe} seed {seed}: test accuracy {result["test"]["accuracy"]:.3f}', flush=True)
  summary = {r: {'test_accuracy_mean': float(np.mean([x['test_accuracy'] for x in v])),
                 'test_accuracy_std': float(np.std([x['test_accuracy'] for x in v])),
                 'runs': v} for r, v in rows.items()}
  results = {'pretrain_test_accuracy': pre['test']['accuracy'], 'seeds': seeds,
             'train_examples': configs[(RECIPES[0], 0)].data.max_train, 'recipes': summary}
  with open(os.path.join(workdir, 'results.json'), 'w') as f:
    json.dump(results, f, indent=2)
  table = table_markdown(results)
  with open(os.path.join(workdir, 'results.md'), 'w') as f:
    f.write(table)
  plots.plot_bars({r: [x['test_accuracy'] for x in rows[r]] for r in RECIPES},
                  'test accuracy, digits 5-9', os.path.join(workdir, 'accuracy.png'))
  print(table)
  return results


def table_markdown(results: dict) -> str:
  lines = [f'Pretrained on digits 0-4: test accuracy {results["pretrain_test_accuracy"]:.3f}.',
           f'Digits 5-9 from {results["train_examples"]} labelled examples, '
           f'{results["seeds"]} seeds:', '',
           '| recipe | test accuracy (mean +/- std) | per seed |', '|---|---|---|']
  for recipe, s in results['recipes'].items():
    per_seed = ', '.join(f'{x["test_accuracy"]:.3f}' for x in s['runs'])
    lines.append(f'| {recipe} | {s["test_accuracy_mean"]:.3f} +/- {s["test_accuracy_std"]:.3f} '
                 f'| {per_seed} |')
  return '\n'.join(lines) + '\n'
