"""Runs one config's variants side by side and draws them together (book 4.4, bias-variance).

  python -m scripts.sweep --config=configs/mlp/imdb_overfit.py \
      --runs=original,smaller,bigger,l1,l2,l1_l2,dropout --workdir=/tmp/overfit \
      --set=data.path=/data/imdb.npz
  python -m scripts.sweep --config=configs/mlp/boston_capacity.py --common=embedded \
      --runs=width=1,width=2,width=4,width=8,width=16,width=32,width=64,width=128,width=256 \
      --capacity --workdir=/tmp/capacity

Each run is `--config=FILE:RUN,COMMON` trained in WORKDIR/RUN: by scripts.train's loop, or as
one cross-validation program when the config sets crossval.scheme (then its numbers are fold
means). A run already finished in its directory is read back, not trained again. Writes:
- sweep.json: per run, parameters and the final and best training/validation metric;
- curves.png: every run's validation curve of --metric on one figure (book 4.4's figures);
- with --capacity, capacity.png: final training and validation --metric against the number of
  parameters (the U-shaped bias-variance curve: underfitting left, overfitting right).
"""
import json
import os

from absl import flags

from library import cli

_CONFIG = flags.DEFINE_string('config', None, 'config file (without :variant)')
_RUNS = flags.DEFINE_list('runs', None, 'the variants to run, one each')
_COMMON = flags.DEFINE_string('common', '', 'variants added to every run, e.g. embedded,smoke')
_WORKDIR = flags.DEFINE_string('workdir', None, 'one sub-directory per run, plots here')
_METRIC = flags.DEFINE_string('metric', 'loss', 'the metric drawn (loss, accuracy, mae, ...)')
_CAPACITY = flags.DEFINE_bool('capacity', False, 'also draw capacity.png (bias-variance)')
_SET = flags.DEFINE_multi_string('set', [], 'key=value for every run, e.g. data.path=/x.npz')
flags.mark_flags_as_required(['config', 'runs', 'workdir'])


def _load(path: str, arg: str):
  import importlib.util  # pylint: disable=import-outside-toplevel
  from library.errors import UserError  # pylint: disable=import-outside-toplevel
  if not os.path.isfile(path):
    raise UserError(f'--config={path!r}: no such file')
  spec = importlib.util.spec_from_file_location('sweep_config', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def _curves(workdir: str, results: dict, metric: str):
  """(epochs, training values, validation values) of one finished run."""
  from library import writers  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  if 'folds' in results:
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


def main(_):
  from library import (  # pylint: disable=import-outside-toplevel
      config as config_lib, crossval, parallel, plots, train)
  from library.errors import UserError  # pylint: disable=import-outside-toplevel
  cli.quiet_unless_main_process()
  configs = {}
  for run in _RUNS.value:    # every config is checked before anything trains
    arg = ','.join(v for v in (run, _COMMON.value) if v)
    configs[run] = _load(_CONFIG.value, arg)
    configs[run].unlock()
    for assignment in _SET.value:
      config_lib.apply_override(configs[run], assignment)
    config_lib.validate(configs[run])
    if '/' in run or run in ('.', '..'):
      raise UserError(f'--runs entry {run!r} cannot be a directory name')
  rows, curves = [], {}
  for run, config in configs.items():
    workdir = os.path.join(_WORKDIR.value, run)
    done = os.path.join(workdir, 'results.json')
    if os.path.exists(done):
      with open(done) as f:
        results = json.load(f)
      print(f'{run}: finished before, read from {done}', flush=True)
    elif config.crossval.scheme:
      results = crossval.run_crossval(config, workdir)
    else:
      results = train.train_and_evaluate(config, workdir)
    epochs, train_curve, val_curve = _curves(workdir, results, _METRIC.value)
    if not val_curve:
      raise UserError(f'run {run!r} has no validation {_METRIC.value!r} to compare')
    best = (max if _METRIC.value == 'accuracy' else min)(val_curve)
    rows.append({'run': run, 'params': results['num_params'],
                 f'final_train_{_METRIC.value}': train_curve[-1],
                 f'final_val_{_METRIC.value}': val_curve[-1],
                 f'best_val_{_METRIC.value}': best,
                 'best_epoch': epochs[val_curve.index(best)],
                 'train_seconds': results['train_seconds']})
    curves[run] = (epochs, train_curve, val_curve)
    print(json.dumps(rows[-1]), flush=True)
  if parallel.is_main_process():
    os.makedirs(_WORKDIR.value, exist_ok=True)
    with open(os.path.join(_WORKDIR.value, 'sweep.json'), 'w') as f:
      json.dump(rows, f, indent=2)
    plots.plot_runs(curves, _METRIC.value, os.path.join(_WORKDIR.value, 'curves.png'))
    if _CAPACITY.value:
      plots.plot_capacity(rows, _METRIC.value, os.path.join(_WORKDIR.value, 'capacity.png'))
    print(f'sweep.json and plots are in {_WORKDIR.value}')


if __name__ == '__main__':
  cli.run(main)
