"""A trained tabular workdir to what a team hands in: out-of-fold scores and submission.csv.

  report = submit('/tmp/boston_run', folder='/tmp/boston')   # scripts/competition.py

For a run of k folds as members (projects/tabular/task.py), each fold predicts its own
validation rows (the out-of-fold predictions, scored with the competition's metric), and the
test rows through its own fitted preprocessing (preprocessing.json); the test predictions
averaged over the folds are submission.csv, with exactly sample_submission.csv's columns, in
its order, with its ids in its order. scikit-learn's baselines are trained on the same folds,
and a blend of ours with gradient boosting, its weight fitted on the out-of-fold predictions,
is written when it beats both there. Members that also vary hyperparameter values
(members.learning_rate=(...) and the like: folds x values, one run) are scored out of fold
value by value; the best value's folds make the submission, and the report lists the others'
scores. A single model (no members) predicts the test rows alone, and its validation split,
if it has one, takes the out-of-fold column.

`predict_table(workdir, frame)` is the same path for any new table: each member's saved
preprocessing, then the fold average (of the value the submission chose, scores.json's
`values`). The trained state is rebuilt through the run's folder
(config.data.path): its train.csv must be the one the run fitted, which is checked against
preprocessing.json (an edited or moved train.csv is a one-line error, not other inputs).
`check(config, folder, metric)` makes every check of the folder that a submission needs, so
that scripts.competition makes them before it trains.
"""
import json
import os

import jax
import numpy as np

from library import inference, members as members_lib, writers
from library.errors import UserError
from projects.tabular import competitions, images, preprocessing, task as task_lib


def _trained(workdir: str, which: str):
  """(config, setup, the state of each member on the host (leading axis M), each member's
  fitted preprocessing, the read checkpoint's meta: its step, the steps passed over)."""
  from library import train  # pylint: disable=import-outside-toplevel
  config = inference.load_config(workdir)
  if config.task != 'projects.tabular.task':
    raise UserError(f'{workdir} is a run of task={config.task!r}, not of the tabular task '
                    '(projects.tabular.task)')
  s = train.setup(config)
  state, meta = inference.restore(workdir, config, s.state, which, s.hook.size)
  state = jax.device_get(state)
  if s.members is not None:
    lay = s.members
    state = jax.tree.map(lambda x: x[:lay.size], state)
    specs = lay.preprocessing
  else:
    state = jax.tree.map(lambda x: np.asarray(x)[None], state)
    specs = [s.datasets.preprocessing]
  saved = os.path.join(workdir, 'preprocessing.json')
  if os.path.exists(saved):
    try:
      with open(saved) as f:
        fitted = json.load(f)
    except ValueError as e:
      raise UserError(f'{saved} is not JSON ({e}): it was damaged; train the run again '
                      '(--start_over moves the old run aside)') from None
    fitted = fitted if isinstance(fitted, list) else [fitted]
    if len(fitted) != len(specs) or not all(
        isinstance(f, dict) and set(f) == set(spec) for f, spec in zip(fitted, specs)):
      raise UserError(f'{saved} is not the preprocessing this run fitted ({len(specs)} '
                      f'of them, with keys {sorted(specs[0])}): it was damaged or edited; '
                      'train the run again (--start_over moves the old run aside)')
    if fitted != json.loads(json.dumps(specs)):
      what = ('train/ is not the images' if 'images' in specs[0] else
              'train.csv is not the table')
      raise UserError(f'{config.data.path}/{what} {workdir} was trained on (what was fitted '
                      'differs from preprocessing.json): put it back, or train again')
  return config, s, state, specs, meta


class _Predictor:
  """The members' predictions of one trained run: their state (leading axis M) placed on the
  device once, predict vmapped over them and compiled once a chunk shape, at most
  rows_per_call rows a call (config.eval_batch_size, the rows the run's evaluation took at
  once); a short last chunk is padded to the others' shape. A regression's outputs come back
  as the target's values, each member's target scale undone (its spec's target_scale)."""

  def __init__(self, task, state_M, rows_per_call: int, specs: list | None = None):
    self.state = jax.device_put(state_M)
    self.rows_per_call = max(1, rows_per_call)
    self.scales = [(spec or {}).get('target_scale') for spec in specs or [None]]
    self._fns = {shared: jax.jit(jax.vmap(task.predict, in_axes=(0, None if shared else 0)))
                 for shared in (True, False)}

  def each(self, inputs, shared: bool = False) -> np.ndarray:
    """Each member's outputs on its own inputs (pytree of (M, N, ...)), or on the inputs they
    all share ((N, ...)): (M, N, outputs)."""
    n = jax.tree.leaves(inputs)[0].shape[0 if shared else 1]
    outputs = self._chunked(self.state, inputs, shared, min(self.rows_per_call, n))
    return np.stack([self._values(m, out) for m, out in enumerate(outputs)])

  def _values(self, m: int, outputs) -> np.ndarray:
    scale = self.scales[m] if m < len(self.scales) else None
    return outputs if scale is None else preprocessing.unscale_target(scale, outputs)

  def out_of_fold(self, inputs, rows_of, shared: bool) -> list:
    """Member m's outputs on its own validation rows alone, rows_of[m] (of the shared inputs,
    or of its own inputs m): a list of (len(rows_of[m]), outputs), one chunk shape for all."""
    rows_per_call = min(self.rows_per_call, max(len(r) for r in rows_of))
    outputs = []
    for m, rows in enumerate(rows_of):
      own = jax.tree.map(lambda x, m=m: x[m:m + 1], self.state)
      rows_m = jax.tree.map(lambda x, m=m, r=rows: x[r] if shared else x[m][r], inputs)
      outputs.append(self._values(m, self._chunked(own, rows_m, True, rows_per_call)[0]))
    return outputs

  def _chunked(self, state, inputs, shared: bool, rows_per_call: int) -> np.ndarray:
    axis = 0 if shared else 1
    n = jax.tree.leaves(inputs)[0].shape[axis]
    if n == 0:
      raise UserError('there are no rows to predict')

    def chunk(x, a):
      part = x[a:a + rows_per_call] if shared else x[:, a:a + rows_per_call]
      short = rows_per_call - part.shape[axis]
      if short:
        pad = [(0, 0)] * part.ndim
        pad[axis] = (0, short)
        part = np.pad(part, pad, mode='edge')
      return part

    predict = self._fns[shared]
    parts = [np.asarray(predict(state, jax.tree.map(lambda x, a=a: chunk(x, a), inputs)))
             for a in range(0, n, rows_per_call)]
    return np.concatenate(parts, axis=1)[:, :n]


def _transform_each(specs: list, frame) -> dict:
  arrays = [preprocessing.transform(spec, frame) for spec in specs]
  return {key: np.stack([a[key] for a in arrays]) for key in arrays[0]}


def predict_table(workdir: str, frame, which: str = 'latest') -> np.ndarray:
  """The run's predictions for every row of `frame` (a DataFrame of train.csv's feature
  columns): what the model outputs (values, or class probabilities), averaged over members."""
  config, s, state, specs, _ = _trained(workdir, which)
  if 'images' in specs[0]:
    raise UserError(f'{workdir} is a run of an image-folder competition: its test images are '
                    'predicted by scripts.competition --workdir')
  if not len(frame):
    raise UserError('the table to predict has no rows')
  members = list(range(len(specs)))
  scores = os.path.join(workdir, 'scores.json')
  if s.members is not None and os.path.exists(scores):
    with open(scores) as f:
      values = json.load(f).get('values')
    if values:      # the hyperparameter values the submission chose
      members = [m for values_m, group in _value_groups(config, s.members.names[:len(specs)])
                 if values_m == values for m in group]
  predictor = _Predictor(s.task, state, config.eval_batch_size, specs)
  return predictor.each(_transform_each(specs, frame))[members].mean(axis=0)


def _values(outputs, classes, kind: str):
  """Model outputs (N, outputs) as one submission column: values, the probability of the
  second class, or class labels; or, for probabilities of more than two classes, (N, C), a
  column per class in `classes`' order."""
  if classes is None:
    return outputs[:, 0]
  if outputs.shape[-1] == 1:           # a sigmoid: the probability of classes[1]
    p = outputs[:, 0]
    return np.asarray(classes)[(p > 0.5).astype(int)] if kind == 'label' else p
  if outputs.shape[-1] == 2 and kind != 'label':   # a softmax over two: P(classes[1])
    return outputs[:, 1]
  if kind != 'label':
    return outputs
  return np.asarray(classes)[outputs.argmax(-1)]


def _truth(y, classes, kind: str):
  """The answers as the metric takes them: values, labels, 1 for the second class, or the
  class numbers where there are more than two."""
  if classes is not None and kind == 'probability' and len(classes) > 2:
    code = {preprocessing.level(c): i for i, c in enumerate(classes)}
    return np.array([code[preprocessing.level(v)] for v in y])
  if classes is not None and kind == 'probability':
    return competitions.positive(y, classes)
  return y.to_numpy()


def _score(fn, kind: str, expected, column) -> float:
  if kind == 'label':     # class labels, compared as text
    column, expected = competitions.labels_as_text(column), competitions.labels_as_text(expected)
  return float(fn(expected, column))


def check(config, folder: str, metric: str | None = None) -> dict:
  """competition.json's id, target, task and metric for a submission of `config` on `folder`
  (the metric from `metric` or the folder's competition.json); every mistake a one-line
  UserError, made before anything trains."""
  if config.task != 'projects.tabular.task':
    raise UserError(f'the config is of task={config.task!r}; a competition trains '
                    'task=projects.tabular.task (configs/tabular/competition.py)')
  t = config.task_config.table
  image = images.is_image_competition(folder)
  pixels = os.path.isfile(os.path.join(os.path.expanduser(folder), 'train.csv'))
  if image and not t.id and not pixels:
    raise UserError('task_config.table.id must name the id column that a submission keeps')
  if image:
    _, sample = images.read_folder(folder, t.target, t.id)
  else:
    _, test, sample = task_lib.read_folder(folder, t.target, t.id)
    if test is None or sample is None:
      raise UserError(f'{folder} needs test.csv and a sample submission (sample_submission.csv'
                      ') to make a submission')
  # Kaggle's sample names the columns a submission has: the id (the tables' own, or the test
  # rows' in order where the tables have none) and the prediction, named as Kaggle wants it,
  # or a probability column per class.
  if len(sample.columns) < 2 or (t.id and sample.columns[0] != t.id):
    raise UserError(f'{task_lib.find_sample(folder) or folder} has columns '
                    f'{list(sample.columns)}; a submission here has the id '
                    f'{t.id or "(any)"} then the prediction (or a probability per class)')
  per_class = len(sample.columns) > 2
  if per_class:
    competitions.class_columns(sample.columns, _classes(config, folder, image))
  if config.members.scheme not in ('', 'kfold', 'stratified_kfold', 'loo'):
    raise UserError(f'members.scheme={config.members.scheme!r}: out-of-fold predictions need '
                    'folds that validate every row once (kfold, stratified_kfold, loo)')
  info = {'id': t.id, 'target': t.target, 'task': task_lib.kind(config), 'metric': metric}
  described = os.path.join(folder, 'competition.json')
  if os.path.isfile(described):
    with open(described) as f:
      info['metric'] = metric or json.load(f)['metric']
  if not info['metric']:     # the loss's own: what the network is trained to get right
    info['metric'] = 'rmse' if info['task'] == 'regression' else 'accuracy'
    info['metric_follows_loss'] = True
  _, _, kind = competitions._metric(info['metric'])  # pylint: disable=protected-access
  if per_class and (info['metric'] != 'log_loss' or info['task'] != 'multiclass'):
    raise UserError(f'the sample submission has a probability column per class, for a '
                    f'multi-class log loss; metric {info["metric"]} with task_config.loss='
                    f'{config.task_config.loss} cannot fill them')
  if kind == 'probability' and info['task'] == 'multiclass' and not per_class:
    raise UserError(f'metric {info["metric"]} of more than two classes needs a probability '
                    'column per class, and the sample submission has one prediction column: '
                    'use --metric=accuracy')
  if kind == 'value' and info['task'] != 'regression':
    raise UserError(f'metric {info["metric"]} scores values; task_config.loss='
                    f'{config.task_config.loss} classifies')
  if kind != 'value' and info['task'] == 'regression':
    raise UserError(f'metric {info["metric"]} scores classes; task_config.loss='
                    f'{config.task_config.loss} is a regression')
  return info


def _classes(config, folder: str, image: bool) -> list:
  """The target's classes as training will number them: the image folders', or the table's
  target values."""
  t = config.task_config.table
  train_csv = os.path.join(os.path.expanduser(folder), 'train.csv')
  if image and not os.path.isfile(train_csv):
    return images.class_names(folder, config.data)
  values = task_lib.read_csv(train_csv, usecols=[t.target])[t.target]
  return task_lib.classes_of(config, values) or []


def submit(workdir: str, folder: str | None = None, metric: str | None = None,
           which: str = 'latest', baselines: bool = True) -> dict:
  """Out-of-fold and test scores of a trained workdir, its submission.csv, the baselines on
  the same folds and the blend; also written to workdir/scores.json."""
  import pandas as pd  # pylint: disable=import-outside-toplevel
  config, s, state, specs, meta = _trained(workdir, which)
  t = config.task_config.table
  folder = folder or config.data.path
  info = check(config, folder, metric)
  info.update(classes=specs[0].get('classes'), kinds=task_lib.kind_options(t))
  fn, higher, kind = competitions._metric(info['metric'])  # pylint: disable=protected-access
  classes = info['classes']
  task = s.task
  lay = s.members
  image = 'images' in specs[0]
  if image:      # the training images' classes, in the order they were read
    files, sample = images.read_folder(folder, t.target, t.id)
    laid = (lay.data['labels'] if lay is not None else np.concatenate(
        [s.datasets.splits[n]['labels'] for n in ('train', 'validation', 'test')
         if n in s.datasets.splits]))
    rows = task_lib.split_rows(config, len(laid))
    codes = np.empty_like(laid)
    codes[np.concatenate(list(rows.values()))] = laid
    target = pd.Series(np.asarray(classes, dtype=object)[codes], name=t.target)
  else:
    train, test, sample = task_lib.read_folder(folder, t.target, t.id)
    target = train[t.target]
    rows = task_lib.split_rows(config, len(train))
  laid_out = np.concatenate(list(rows.values()))    # the splits' row r is train.csv's row
  # Out-of-fold outputs in train.csv's row order (each row predicted by the member that did
  # not train on it), and the folds in train.csv's rows.
  oof_rows, fold_rows, oof = None, None, None
  chosen, values, grid = list(range(len(specs))), None, []   # the members submitted
  predictor = _Predictor(task, state, config.eval_batch_size, specs)

  def oof_score(outputs, at):
    return _score(fn, kind, _truth(target.iloc[at], classes, kind),
                  _values(outputs[at], classes, kind))

  if lay is not None and 'validation' in lay.eval_rows:
    validation = lay.eval_rows['validation']
    predicted = predictor.out_of_fold(lay.data['inputs'] if image else lay.member_inputs,
                                      validation, shared=image)
    # Each combination of hyperparameter values (one, without members.<value> grids) is
    # scored out of fold on its own folds; the best one's folds are the submission.
    scored = []
    for group_values, members in _value_groups(config, lay.names[:len(specs)]):
      outputs = np.full((len(target), predicted[0].shape[-1]), np.nan)
      for m in members:
        outputs[laid_out[validation[m]]] = predicted[m]
      at = np.sort(np.concatenate([laid_out[validation[m]] for m in members]))
      scored.append((oof_score(outputs, at), group_values, members, outputs, at))
    best = (max if higher else min)(scored, key=lambda g: g[0])
    _, values, chosen, oof, oof_rows = best
    fold_rows = [(laid_out[lay.train_rows[m]], laid_out[validation[m]]) for m in chosen]
    if len(scored) > 1:
      grid = [(_label(v), score) for score, v, _, _, _ in scored]
  elif lay is None and 'validation' in rows:
    oof_rows = rows['validation']
    inputs = (s.datasets.inputs('validation') if image else
              jax.tree.map(lambda x: x[0], _transform_each(specs, train.iloc[oof_rows])))
    predicted = predictor.each(inputs, shared=True)[0]
    oof = np.full((len(target), predicted.shape[-1]), np.nan)
    oof[oof_rows] = predicted
  test_inputs = (images.test_inputs(config, folder, files) if image else
                 _transform_each(specs, test))
  test_outputs = predictor.each(test_inputs, shared=image)[chosen].mean(axis=0)
  truth = None if oof_rows is None else _truth(target.iloc[oof_rows], classes, kind)
  report = {'metric': info['metric'], 'higher_is_better': higher,
            'step': int(meta['step']), 'checkpoint': which,
            'passed_over': meta.get('passed_over', []), 'members': len(chosen),
            'oof_rows': 0 if oof_rows is None else int(len(oof_rows)), 'models': []}
  if grid:
    report['values'] = values

  def add(name, path, column):
    row = {'model': name, 'oof': None if truth is None else _score(fn, kind, truth, column),
           'test': competitions.score_if_solved(path, folder), 'submission': path}
    report['models'].append(row)
    return row

  path = os.path.join(workdir, 'submission.csv')
  # (values, the sigmoid's probability of class 1, or a probability per class)
  competitions.write_submission(
      path, sample, test_outputs[:, 0] if test_outputs.shape[1] == 1 else test_outputs, kind,
      classes)
  ours = add('ours' + (f' ({_label(values)})' if grid else ''), path,
             None if truth is None else _values(oof[oof_rows], classes, kind))
  for label, score in grid:      # the other values, out of fold
    if label != _label(values):
      report['models'].append({'model': f'ours ({label})', 'oof': score, 'test': None,
                               'submission': ''})
  # (scikit-learn's baselines are models of a table's columns, pixels included, not of image
  # files)
  table = os.path.isfile(os.path.join(os.path.expanduser(folder), 'train.csv'))
  predictions = {}
  if baselines and fold_rows is not None and table:
    out = os.path.join(workdir, 'submissions')
    report['models'] += competitions.baselines(folder, fold_rows=fold_rows, out=out,
                                               oof=predictions, info=info)
  if predictions and info['task'] != 'multiclass':      # a blend of two columns
    out = os.path.join(workdir, 'submissions')
    boost = next(r for r in report['models'] if r['model'] == 'hist_gradient_boosting')
    boost_oof, boost_test = predictions['hist_gradient_boosting']
    # Blended on probabilities of the positive class (or values); labels scored as codes.
    as_codes = (competitions.positive(target.iloc[oof_rows], classes)
                if kind == 'label' else truth)
    w, value = _blend(fn, higher, kind, as_codes, oof[oof_rows, 0], boost_oof[oof_rows])
    report['blend_weight_ours'] = w
    better = (lambda a, b: a > b) if higher else (lambda a, b: a < b)  # noqa: E731
    if better(value, ours['oof']) and better(value, boost['oof']):
      path = os.path.join(out, 'blend.csv')
      competitions.write_submission(path, sample, w * test_outputs[:, 0] + (1 - w) * boost_test,
                                    kind, classes)
      column = competitions.as_submitted(w * oof[oof_rows, 0] + (1 - w) * boost_oof[oof_rows],
                                         kind)
      add(f'blend ({w:.2f} ours)', path,
          np.asarray(classes, dtype=object)[column] if kind == 'label' else column)
  writers.write_json_atomic(os.path.join(workdir, 'scores.json'), report)
  return report


def _value_groups(config, names: list) -> list:
  """[(values, members)]: the members of each combination of the varied hyperparameter
  values (members.learning_rate, ...; library/members.varied), in the order they were laid
  out."""
  varied = members_lib.varied(config)
  groups = {}
  for m, name in enumerate(names):
    groups.setdefault(tuple(name[key] for key in varied), []).append(m)
  return [(dict(zip(varied, key)), members) for key, members in groups.items()]


def _label(values: dict) -> str:
  return ', '.join(f'{key}={value:g}' for key, value in values.items())


def _blend(fn, higher: bool, kind: str, truth, ours, boost) -> tuple[float, float]:
  """(w, its score): the weight of ours in w * ours + (1 - w) * boosting that scores best
  out of fold, w in steps of 0.05."""
  scores = [(float(fn(truth, competitions.as_submitted(w * ours + (1 - w) * boost, kind))),
             float(w)) for w in np.linspace(0.0, 1.0, 21)]
  value, w = (max if higher else min)(scores)
  return w, value
