"""Keras 3's EarlyStopping and ReduceLROnPlateau, as the loop runs them at each evaluation.

Their logic is Keras' own (keras/src/callbacks/early_stopping.py, reduce_lr_on_plateau.py and
monitor_callback.py, 3.x), line for line where it decides: an improvement is
`monitor_op(current - min_delta, best)` with min_delta negated for 'min'; EarlyStopping counts
`wait` before comparing and stops once `wait >= patience` after the first evaluation;
ReduceLROnPlateau counts down its cooldown first, then multiplies the rate by `factor`, not
below `min_lr`. Keras calls them at each epoch's end; here they run at each evaluation, which is
each epoch's end unless the config evaluates more often, and `epoch` is the evaluation's index.

Numbers as Keras 3 has them on its JAX (and TensorFlow) backend: the comparisons are
`keras.ops.less/greater`, which compare in float32 (`current - min_delta` is computed in Python,
then cast), so an improvement of exactly `min_delta` decides as it does there; the learning rate
is a float32 variable, so ReduceLROnPlateau acts on the float32 rate it set last, not on the
loop's reading of schedule x scale (one float32 step off it, which made it "reduce" again to
`min_lr`). Tested on random series and arguments against Keras' own classes
(tests/test_callbacks.py).

Their state is plain JSON (`state()` / `load()`), saved with every checkpoint: a run killed
while counting patience resumes counting exactly. What they act on, the loop provides: the
learning-rate scale in the state (`library.optimizers.lr_scale`) and a copy of the best state.
"""
import ml_collections
import numpy as np
from ml_collections import config_dict

from library.errors import UserError

# The direction of a metric for mode='auto' (Keras reads it from the metric object).
_HIGHER_IS_BETTER = ('accuracy', 'auc', 'precision', 'recall')
_LOWER_IS_BETTER = ('loss', 'mae', 'mse', 'rmse', 'mape')


def higher_is_better(metric: str) -> bool | None:
  """Whether a metric ('val_accuracy', 'out_auc', 'loss') is better higher; None: unknown."""
  if metric.endswith(_LOWER_IS_BETTER):
    return False
  return True if metric.endswith(_HIGHER_IS_BETTER) else None


# Every key of this section makes a resumed run another experiment's: none may change.
RESUME_SAFE = frozenset()


def default_config() -> ml_collections.ConfigDict:
  """config.callbacks: Keras 3's EarlyStopping and ReduceLROnPlateau, with their arguments."""
  # Keras 3's callbacks, run at every evaluation (each epoch by default) on the metrics of
  # that evaluation; their state is saved in every checkpoint, so a resumed run continues
  # counting where it stopped. `monitor` is 'split.metric' ('validation.loss'); '' is off.
  c = ml_collections.ConfigDict()
  c.early_stopping = ml_collections.ConfigDict({
      'monitor': '', 'min_delta': 0.0, 'patience': 0, 'mode': 'auto',
      'baseline': config_dict.placeholder(float), 'restore_best_weights': False,
      'start_from_epoch': 0})
  # The learning rate is scaled by a factor held in the optimizer state (optax's
  # inject_hyperparams): a reduction neither recompiles nor is lost on resume.
  c.reduce_lr = ml_collections.ConfigDict({
      'monitor': '', 'factor': 0.1, 'patience': 10, 'mode': 'auto', 'min_delta': 1e-4,
      'cooldown': 0, 'min_lr': 0.0})
  return c


def _monitor_op(name: str, monitor: str, mode: str):
  if mode == 'auto':
    higher = higher_is_better(monitor.rsplit('.', 1)[-1])
    if higher is not None:
      mode = 'max' if higher else 'min'
    else:
      raise UserError(f'callbacks.{name}.monitor={monitor!r}: cannot tell whether it should be '
                      f"maximized or minimized; set callbacks.{name}.mode to 'max' or 'min'")
  return mode


def validate(config) -> None:
  """Raises UserError for a bad callback setting (library.config.validate calls it)."""
  c = config.callbacks
  for name in ('early_stopping', 'reduce_lr'):
    cb = c[name]
    if not cb.monitor:
      continue
    if cb.mode not in ('auto', 'min', 'max'):
      raise UserError(f'callbacks.{name}.mode={cb.mode!r} is not one of auto, min, max')
    split, _, metric = cb.monitor.partition('.')
    if split not in ('train', 'validation') or not metric:
      raise UserError(f'callbacks.{name}.monitor={cb.monitor!r} must be train.<metric> or '
                      'validation.<metric> (e.g. validation.loss)')
    _monitor_op(name, cb.monitor, cb.mode)
    if cb.patience < 0:
      raise UserError(f'callbacks.{name}.patience={cb.patience} must be >= 0')
  if c.reduce_lr.monitor:
    if not 0 < c.reduce_lr.factor < 1:
      raise UserError(f'callbacks.reduce_lr.factor={c.reduce_lr.factor} must be in (0, 1) '
                      '(Keras refuses a factor >= 1.0)')
    if c.reduce_lr.cooldown < 0 or c.reduce_lr.min_lr < 0:
      raise UserError('callbacks.reduce_lr.cooldown and min_lr must be >= 0')
  if c.early_stopping.start_from_epoch < 0:
    raise UserError(f'callbacks.early_stopping.start_from_epoch='
                    f'{c.early_stopping.start_from_epoch} must be >= 0')


class _Monitor:
  """Keras' MonitorCallback: the comparison with min_delta in the right direction."""

  def __init__(self, name: str, monitor: str, mode: str, min_delta: float):
    self.monitor = monitor
    self.mode = _monitor_op(name, monitor, mode)
    self.min_delta = -abs(min_delta) if self.mode == 'min' else abs(min_delta)

  def is_improvement(self, value: float, reference: float | None) -> bool:
    if reference is None:
      return True
    # keras.ops.less/greater: the operands become float32 tensors (Keras' floatx).
    shifted, reference = np.float32(value - self.min_delta), np.float32(reference)
    return bool(shifted < reference if self.mode == 'min' else shifted > reference)

  def value(self, logs: dict) -> float | None:
    value = logs.get(self.monitor)
    if value is None:
      raise UserError(f'the callback monitors {self.monitor!r}, which this run does not '
                      f'report (it has {", ".join(sorted(logs))})')
    return value


class EarlyStopping(_Monitor):

  def __init__(self, c):
    super().__init__('early_stopping', c.monitor, c.mode, c.min_delta)
    self.patience, self.baseline = c.patience, c.baseline
    self.restore_best_weights = c.restore_best_weights
    self.start_from_epoch = c.start_from_epoch
    self.wait, self.stopped_epoch, self.best, self.best_epoch = 0, 0, None, 0
    self.best_step = None        # the step whose state is the best weights
    self.stopped_step = None

  def on_evaluation(self, epoch: int, step: int, logs: dict) -> dict:
    """-> {'stop': bool, 'snapshot': bool}: stop training; copy this state as the best."""
    out = {'stop': False, 'snapshot': False}
    current = self.value(logs)
    if epoch < self.start_from_epoch:
      return out
    if self.restore_best_weights and self.best_step is None:
      out['snapshot'], self.best_step, self.best_epoch = True, step, epoch
    self.wait += 1
    if self.is_improvement(current, self.best):
      self.best, self.best_epoch = current, epoch
      if self.restore_best_weights:
        out['snapshot'], self.best_step = True, step
      if self.baseline is None or self.is_improvement(current, self.baseline):
        self.wait = 0
      return out
    if self.wait >= self.patience and epoch > 0:
      self.stopped_epoch, self.stopped_step = epoch, step
      out['stop'] = True
    return out

  def state(self) -> dict:
    return {k: getattr(self, k) for k in ('wait', 'stopped_epoch', 'best', 'best_epoch',
                                          'best_step', 'stopped_step')}

  def load(self, state: dict) -> None:
    for key, value in state.items():
      setattr(self, key, value)


class ReduceLROnPlateau(_Monitor):
  """constant_rate: whether the optimizer's own schedule is constant. Then the rate in effect
  is the one this callback set last, as Keras' float32 variable holds it. Under a schedule that
  moves the rate (Keras refuses to combine the two; here the callback scales the schedule),
  it acts on the rate the loop reports."""

  def __init__(self, c, constant_rate: bool = True):
    super().__init__('reduce_lr', c.monitor, c.mode, c.min_delta)
    self.factor, self.patience, self.cooldown = c.factor, c.patience, c.cooldown
    self.min_lr, self.constant_rate = c.min_lr, constant_rate
    self.best, self.cooldown_counter, self.wait = None, 0, 0
    self.learning_rate = None    # the rate it set last, rounded to float32 as Keras stores it
    self.reductions = []         # (step, new learning rate)

  def on_evaluation(self, epoch: int, step: int, logs: dict,  # pylint: disable=unused-argument
                    learning_rate: float) -> float | None:
    """learning_rate: the rate in effect, as the loop reads it. -> the new learning rate, or
    None to keep the current one."""
    if self.constant_rate and self.learning_rate is not None:
      learning_rate = self.learning_rate
    current = self.value(logs)
    if self.cooldown_counter > 0:
      self.cooldown_counter -= 1
      self.wait = 0
    if self.is_improvement(current, self.best):
      self.best, self.wait = current, 0
    elif not self.cooldown_counter > 0:
      self.wait += 1
      if self.wait >= self.patience:
        if np.float32(learning_rate) > np.float32(self.min_lr):
          new_lr = max(learning_rate * self.factor, self.min_lr)
          self.learning_rate = float(np.float32(new_lr))
          self.cooldown_counter, self.wait = self.cooldown, 0
          self.reductions.append((step, self.learning_rate))
          return self.learning_rate
    return None

  def state(self) -> dict:
    return {'best': self.best, 'cooldown_counter': self.cooldown_counter, 'wait': self.wait,
            'reductions': self.reductions, 'learning_rate': self.learning_rate}

  def load(self, state: dict) -> None:
    self.best, self.wait = state['best'], state['wait']
    self.cooldown_counter = state['cooldown_counter']
    self.reductions = [tuple(r) for r in state['reductions']]
    # (checkpoints written before it was kept: the last reduction's rate)
    self.learning_rate = state.get('learning_rate', self.reductions[-1][1] if self.reductions
                                   else None)


def from_config(c, constant_rate: bool = True) -> dict:
  """The callbacks the config turns on, by name. constant_rate: whether the optimizer's
  schedule is constant (ReduceLROnPlateau's docstring)."""
  out = {}
  if c.early_stopping.monitor:
    out['early_stopping'] = EarlyStopping(c.early_stopping)
  if c.reduce_lr.monitor:
    out['reduce_lr'] = ReduceLROnPlateau(c.reduce_lr, constant_rate)
  return out

