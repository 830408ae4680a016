"""Sweeps a config: structural variants one after another, values of continuous hyperparameters
as members of one program; a ranked table and plots.

  python -m scripts.sweep --config=configs/mlp/boston_kfold.py --common=embedded \
      --grid=optimizer.learning_rate=1e-4,3e-4,1e-3,3e-3 --metric=mae --workdir=/tmp/lr
  python -m scripts.sweep --config=configs/mlp/boston_kfold.py --common=embedded --metric=mae \
      --random=optimizer.learning_rate=loguniform:1e-4:1e-2 --num_random=8 --workdir=/tmp/lr8
  python -m scripts.sweep --config=configs/mlp/imdb_overfit.py \
      --runs=original,smaller,bigger,l1,l2,l1_l2,dropout --workdir=/tmp/overfit \
      --set=data.path=/data/imdb.npz
  python -m scripts.sweep --config=configs/mlp/boston_capacity.py --common=embedded \
      --runs=width=1,width=2,width=4,width=8,width=16,width=32,width=64,width=128,width=256 \
      --capacity --workdir=/tmp/capacity

Each run is `--config=FILE:RUN,COMMON` trained in WORKDIR/RUN by the one loop. Values (`--grid`,
or `--random`, which draws --num_random values) of the learning rate, the weight decay, the
dropout rate (model.kwargs.dropout_rate) and the L1/L2 factors (task_config.regularization.l1,
.l2) change no shape, so they are members of each run (library/members.py, with the config's
folds or seeds if it has any): one vmapped program trains every combination. A value of any
other key changes the program, so each such value is a run of its own, one after another (a
product with --runs). A run already finished in its directory is read back, not trained again.
Writes:
- sweep.json and sweep.md: one row per run and combination of values (means over folds and
  seeds), ranked by the best validation --metric, with its epoch, the final values and
  parameters;
- curves.png: every row's validation curve of --metric on one figure (book 4.4's figures);
- with member values, values.png: best and final validation --metric against the first key's
  value;
- with --capacity, capacity.png: final training and validation --metric against the number of
  parameters (the U-shaped bias-variance curve: underfitting left, overfitting right).
"""
import itertools
import json
import math
import os

from absl import flags

from library import cli

_CONFIG = flags.DEFINE_string('config', None, 'config file (without :variant)')
_RUNS = flags.DEFINE_list('runs', [''], 'the variants to run, one each (default: the config)')
_COMMON = flags.DEFINE_string('common', '', 'variants added to every run, e.g. embedded,smoke')
_WORKDIR = flags.DEFINE_string('workdir', None, 'one sub-directory per run, plots here')
_METRIC = flags.DEFINE_string('metric', 'loss', 'the metric compared (loss, accuracy, mae, ...)')
_CAPACITY = flags.DEFINE_bool('capacity', False, 'also draw capacity.png (bias-variance)')
_SET = flags.DEFINE_multi_string('set', [], 'key=value for every run, e.g. data.path=/x.npz')
_GRID = flags.DEFINE_multi_string('grid', [], 'key=v1,v2,... (repeatable): a grid of values')
_RANDOM = flags.DEFINE_multi_string(
    'random', [], 'key=uniform:LO:HI or key=loguniform:LO:HI: --num_random values drawn')
_NUM_RANDOM = flags.DEFINE_integer('num_random', 8, 'values drawn for each --random key')
_RANDOM_SEED = flags.DEFINE_integer('random_seed', 0, 'seed of the --random draws')
flags.mark_flags_as_required(['config', 'workdir'])

# Keys whose values are members of one program (an array of the state, not a constant): the
# config key -> the name in config.members.
_MEMBER_KEYS = {'optimizer.learning_rate': 'learning_rate',
                'optimizer.weight_decay': 'weight_decay',
                'model.kwargs.dropout_rate': 'dropout_rate',
                'task_config.regularization.l1': 'l1', 'task_config.regularization.l2': 'l2'}


def _values() -> dict[str, list[str]]:
  """{key: [value text, ...]} from --grid and --random (drawn reproducibly, sorted)."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  from library.errors import UserError  # pylint: disable=import-outside-toplevel
  out = {}
  for entry in _GRID.value:
    key, sep, text = entry.partition('=')
    if not sep or not text:
      raise UserError(f'--grid={entry!r} must be key=v1,v2,...')
    out[key] = [v for v in text.split(',') if v]
  rng = np.random.default_rng(_RANDOM_SEED.value)
  for entry in _RANDOM.value:
    key, sep, spec = entry.partition('=')
    kind, *bounds = spec.split(':')
    try:
      low, high = (float(b) for b in bounds)
    except ValueError:
      low = high = None
    if not sep or kind not in ('uniform', 'loguniform') or low is None or not low < high or (
        kind == 'loguniform' and low <= 0):
      raise UserError(f'--random={entry!r} must be key=uniform:LO:HI or key=loguniform:LO:HI '
                      'with LO < HI (and LO > 0 for loguniform)')
    draws = (np.exp(rng.uniform(math.log(low), math.log(high), _NUM_RANDOM.value))
             if kind == 'loguniform' else rng.uniform(low, high, _NUM_RANDOM.value))
    out[key] = [f'{v:.4g}' for v in sorted(draws)]
  return out


def _load(path: str, arg: str):
  return cli.config_module(path, 'sweep_config').get_config(arg)


def _curves(workdir: str, results: dict, metric: str):
  """(epochs, training values, validation values) of one finished run."""
  from library import writers  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  if 'members' in results:
    with open(os.path.join(workdir, 'history.json')) as f:
      history = json.load(f)
    mean = lambda split: np.asarray(history[split].get(metric, [])).mean(1).tolist() if (  # noqa
        history[split].get(metric)) else []
    return history['epochs'], mean('train'), mean('validation')
  records = writers.read_metrics(os.path.join(workdir, 'metrics.jsonl'))
  val = [(r['epoch'], r[metric]) for r in records if r['split'] == 'validation' and metric in r]
  train = {r['epoch']: r[metric] for r in records if r['split'] == 'train' and metric in r}
  epochs = [e for e, _ in val]
  return epochs, [train.get(e, float('nan')) for e in epochs], [v for _, v in val]


def _rows(run: str, workdir: str, results: dict, metric: str,
          varied: tuple[str, ...]) -> tuple[list, dict]:
  """One row per combination of the member values `varied` in a run (means over its folds and
  seeds), and their curves."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  pick = max if metric == 'accuracy' else min
  if 'members' not in results or not varied:
    groups = {None: None}
  else:
    groups = {}
    for row in results['members']:
      groups.setdefault(tuple(row[name] for name in varied), []).append(row['member'])
  rows, curves = [], {}
  if groups != {None: None}:
    with open(os.path.join(workdir, 'history.json')) as f:
      history = json.load(f)
  for combo, members in groups.items():
    if members is None:
      epochs, train_curve, val_curve = _curves(workdir, results, metric)
    else:
      def mean(split, members=members):
        values = history[split].get(metric)
        return np.asarray(values)[:, members].mean(1).tolist() if values else []
      epochs, train_curve, val_curve = history['epochs'], mean('train'), mean('validation')
    if not val_curve:
      from library.errors import UserError  # pylint: disable=import-outside-toplevel
      raise UserError(f'run {run!r} has no validation {metric!r} to compare')
    best = pick(val_curve)
    values = {} if combo is None else dict(zip(varied, combo))
    name = ' '.join([run] * bool(run) + [f'{k}={v:g}' for k, v in values.items()])
    rows.append({'run': name, 'params': results['num_params'], **values,
                 f'final_train_{metric}': train_curve[-1] if train_curve else float('nan'),
                 f'final_val_{metric}': val_curve[-1], f'best_val_{metric}': best,
                 'best_epoch': epochs[val_curve.index(best)],
                 'train_seconds': results['train_seconds']})
    curves[name] = (epochs, train_curve[:len(epochs)], val_curve)
  return rows, curves


def _markdown(rows: list, metric: str) -> str:
  keys = [k for k in ('run', f'best_val_{metric}', 'best_epoch', f'final_val_{metric}',
                      f'final_train_{metric}', 'params', 'train_seconds') if k in rows[0]]
  lines = ['| rank | ' + ' | '.join(keys) + ' |', '|' + '---|' * (len(keys) + 1)]
  for i, row in enumerate(rows, 1):
    cells = [f'{row[k]:.4g}' if isinstance(row[k], float) else str(row[k]) for k in keys]
    lines.append(f'| {i} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'


def main(_):
  from library import (  # pylint: disable=import-outside-toplevel
      config as config_lib, parallel, plots, train)
  from library.errors import UserError  # pylint: disable=import-outside-toplevel
  cli.quiet_unless_main_process()
  values = _values()
  member_values = {k: v for k, v in values.items() if k in _MEMBER_KEYS}
  other = {k: v for k, v in values.items() if k not in _MEMBER_KEYS}
  configs = {}
  for run in _RUNS.value:    # every config is checked before anything trains
    for combo in itertools.product(*other.values()):
      assignments = [f'{k}={v}' for k, v in zip(other, combo)]
      name = ','.join([run] * bool(run) + assignments) or 'run'
      arg = ','.join(v for v in (run, _COMMON.value) if v)
      config = _load(_CONFIG.value, arg)
      config.unlock()
      for assignment in [*_SET.value, *assignments]:
        config_lib.apply_override(config, assignment)
      for key, texts in member_values.items():
        try:
          config.members[_MEMBER_KEYS[key]] = tuple(float(t) for t in texts)
        except ValueError:
          raise UserError(f'--grid/--random {key}: {texts} are not numbers') from None
      config_lib.validate(config)
      if '/' in name or name in ('.', '..'):
        raise UserError(f'--runs entry {run!r} cannot be a directory name')
      configs[name] = config
  rows, curves = [], {}
  for run, config in configs.items():
    workdir = os.path.join(_WORKDIR.value, run)
    done = os.path.join(workdir, 'results.json')
    if os.path.exists(done):
      with open(done) as f:
        results = json.load(f)
      print(f'{run}: finished before, read from {done}', flush=True)
    else:
      results = train.train_and_evaluate(config, workdir)
    new_rows, new_curves = _rows(run if len(configs) > 1 else '', workdir, results,
                                 _METRIC.value, tuple(_MEMBER_KEYS[k] for k in member_values))
    rows += new_rows
    curves.update(new_curves)
    for row in new_rows:
      print(json.dumps(row), flush=True)
  if parallel.is_main_process():
    os.makedirs(_WORKDIR.value, exist_ok=True)
    ranked = sorted(rows, key=lambda r: r[f'best_val_{_METRIC.value}'],
                    reverse=_METRIC.value == 'accuracy')
    with open(os.path.join(_WORKDIR.value, 'sweep.json'), 'w') as f:
      json.dump(ranked, f, indent=2)
    with open(os.path.join(_WORKDIR.value, 'sweep.md'), 'w') as f:
      f.write(_markdown(ranked, _METRIC.value))
    plots.plot_runs(curves, _METRIC.value, os.path.join(_WORKDIR.value, 'curves.png'))
    if member_values:
      plots.plot_values(rows, _MEMBER_KEYS[next(iter(member_values))], _METRIC.value,
                        os.path.join(_WORKDIR.value, 'values.png'))
    if _CAPACITY.value:
      plots.plot_capacity(rows, _METRIC.value, os.path.join(_WORKDIR.value, 'capacity.png'))
    print(_markdown(ranked, _METRIC.value), end='')
    print(f'sweep.json, sweep.md and plots are in {_WORKDIR.value}')


if __name__ == '__main__':
  cli.run(main)
