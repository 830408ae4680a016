"""The one module that owns orbax: save, keep the last K and the best, restore the latest.

Order on start (README, "Resume"): the latest step is restored if readable; an unreadable one
(half-deleted, corrupted) is skipped with a warning for the one before it; a checkpoint whose
tree does not match the model is refused (it is another experiment's). Writes are atomic:
orbax writes to a temporary directory and renames it when complete, so a kill during a save
leaves the previous checkpoints as they were.
"""
import json
import logging
import os
import sys
import time

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp
from jax.sharding import NamedSharding, PartitionSpec
from orbax.checkpoint import checkpoint_managers

from library.errors import UserError


def closed_loop_filter(previous):
  """An unraisable-exception hook that drops what a failed checkpoint read leaves behind and
  passes everything else to `previous`.

  When orbax fails to read a checkpoint, asyncio.run closes its event loop while TensorStore's
  reads of that checkpoint are still finishing; their completion callbacks then schedule onto
  the closed loop, and Python prints each `RuntimeError: Event loop is closed` as an
  unraisable exception: a screenful of tracebacks after the one useful warning. Only those,
  raised by asyncio's own closed-loop check, are dropped."""

  def hook(unraisable):
    tb = unraisable.exc_traceback
    while tb is not None and tb.tb_next is not None:
      tb = tb.tb_next
    if (isinstance(unraisable.exc_value, RuntimeError)
        and str(unraisable.exc_value) == 'Event loop is closed' and tb is not None
        and tb.tb_frame.f_code.co_name == '_check_closed'
        and tb.tb_frame.f_code.co_filename.endswith(os.path.join('asyncio', 'base_events.py'))):
      return
    previous(unraisable)

  return hook


# Installed on import: the callbacks can come before the failed read reaches our code.
sys.unraisablehook = closed_loop_filter(sys.unraisablehook)


def abstract(state):
  """Shapes, dtypes and shardings of `state`: what restore fills in, placed as `state` is."""
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
                      state)


def _resized(abstract_state, size: int):
  """The abstract state with a leading (member) axis of `size`, replicated on its mesh: what a
  checkpoint padded for another device count is read into."""
  def one(x):
    sharding = NamedSharding(x.sharding.mesh, PartitionSpec())
    return jax.ShapeDtypeStruct((size, *x.shape[1:]), x.dtype, sharding=sharding)
  return jax.tree.map(one, abstract_state)


def _repadded(state, members: int, target):
  """The first `members` of a restored stacked state, padded as `target` is (with copies of
  the first, as members are padded: library/members.py) and placed in its shardings."""
  def one(x, t):
    x = x[:members]
    x = jnp.concatenate([x, jnp.repeat(x[:1], t.shape[0] - members, axis=0)])
    return jax.device_put(x, t.sharding)
  return jax.tree.map(one, state, target)


def _path_name(path) -> str:
  """'params/Dense_0/kernel' for a dataclass field path and for orbax's dict metadata alike."""
  parts = []
  for key in path:
    for attr in ('name', 'key', 'idx'):
      if hasattr(key, attr):
        parts.append(str(getattr(key, attr)))
        break
  return '/'.join(parts)


class Checkpointer:

  def __init__(self, directory: str, keep: int, best_metric: str = '', best_mode: str = 'max',
               remedy: str = 'use another --workdir or --start_over', async_save: bool = True):
    """async_save: save() returns once the arrays are copied to host memory, and orbax writes
    them in a background thread while training goes on (each save, read and close first waits
    for the one in flight). A checkpoint is still only a step directory once it is complete:
    orbax writes a temporary directory and renames it at the end, so a kill mid-write leaves
    the previous checkpoint as the latest (the temporary one is removed at the next start)."""
    # What the user can do about a checkpoint this run cannot use, in flags of the command
    # that reads it (training's own; evaluate and predict name scripts.train's).
    self.remedy = remedy
    policies = [checkpoint_managers.LatestN(n=keep)]
    if best_metric:
      policies.append(checkpoint_managers.BestN(
          get_metric_fn=lambda metrics: metrics[best_metric], reverse=best_mode == 'min', n=1,
          keep_checkpoints_without_metrics=False))
    options = ocp.CheckpointManagerOptions(
        preservation_policy=checkpoint_managers.AnyPreservationPolicy(policies),
        enable_async_checkpointing=async_save, create=True, cleanup_tmp_directories=True)
    self.directory = os.path.abspath(directory)
    self.best_metric, self.best_mode = best_metric, best_mode
    # The items' handlers named up front: their metadata (shapes, for _check_structure) can be
    # read before any save or restore, and orbax does not warn that it cannot restore them.
    handlers = {'state': ocp.StandardCheckpointHandler(), 'meta': ocp.JsonCheckpointHandler(),
                'best_state': ocp.StandardCheckpointHandler()}
    self._manager = ocp.CheckpointManager(self.directory, options=options,
                                          item_handlers=handlers)

  def all_steps(self) -> list[int]:
    self.wait()
    return sorted(self._manager.all_steps())

  def save(self, step: int, state, meta: dict, metrics: dict | None = None,
           best_state=None) -> None:
    """best_state: a second state saved beside it (EarlyStopping's best weights).

    Returns once the arrays are in host memory (asynchronous saving): `meta` and `metrics`
    are copied now, so the caller may change them while the write goes on."""
    meta = json.loads(json.dumps(dict(meta, metrics=metrics,
                                      has_best_state=best_state is not None)))
    metrics = meta['metrics']
    items = dict(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
    if best_state is not None:
      items['best_state'] = ocp.args.StandardSave(best_state)
    args = ocp.args.Composite(**items)
    self._manager.save(step, args=args, metrics=metrics, force=True)

  def wait(self) -> None:
    """Blocks until the save in flight, if any, is complete on disk."""
    if self._manager is not None:
      self._manager.wait_until_finished()

  def best_step(self) -> int | None:
    """The kept step with the best `best_metric` (None without one)."""
    if not self.best_metric:
      return None
    self.wait()
    scored = []
    for step in self.all_steps():
      try:
        meta = self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
      except Exception:  # pylint: disable=broad-except
        continue
      value = (meta['meta'].get('metrics') or {}).get(self.best_metric)
      if value is not None:
        scored.append((value, step))
    if not scored:
      return None
    return (max if self.best_mode == 'max' else min)(scored)[1]

  def _check_structure(self, step: int, abstract_state, members: int | None = None):
    """Refuses a checkpoint of another model: its tree or shapes differ from ours. Returns
    the checkpoint's leading size where it holds the same `members` padded to another device
    count (restore re-pads them), else None."""
    try:
      stored = self._manager.item_metadata(step)['state']
    except Exception:  # pylint: disable=broad-except
      return  # unreadable metadata: restore will fail and fall back
    if stored is None:
      return
    ours = jax.tree_util.tree_flatten_with_path(abstract_state)[0]
    theirs = {_path_name(k): v for k, v in jax.tree_util.tree_flatten_with_path(stored)[0]}
    pairs = []
    for path, leaf in ours:
      name = _path_name(path)
      if name not in theirs:
        raise UserError(f'checkpoint {self.directory}/{step} is of another model: it has no '
                        f'{name}; {self.remedy}')
      pairs.append((name, tuple(getattr(theirs[name], 'shape', ()) or ()), tuple(leaf.shape)))
    differ = [(n, a, b) for n, a, b in pairs if a != b]
    if differ:
      # Members stack every leaf on a leading axis padded to a multiple of the devices: the
      # same model saved on another device count differs in that axis alone, everywhere.
      stacked = all(a and b for _, a, b in pairs) and len({a[0] for _, a, _ in pairs}) == 1 and (
          len({b[0] for _, _, b in pairs}) == 1) and all(a[1:] == b[1:] for _, a, b in pairs)
      name, theirs_shape, ours_shape = differ[0]
      if stacked and members is not None and members <= min(theirs_shape[0], ours_shape[0]):
        return theirs_shape[0]
      if stacked:
        raise UserError(f'checkpoint {self.directory}/{step} holds {theirs_shape[0]} members '
                        f'where this run makes {ours_shape[0]}: members are padded to a '
                        'multiple of the devices, so run on the device count it was trained '
                        'with (or use another --workdir)')
      raise UserError(f'checkpoint {self.directory}/{step} is of another model: {name} has '
                      f'shape {theirs_shape}, ours {ours_shape}; {self.remedy}')
    if len(theirs) != len(ours):
      raise UserError(f'checkpoint {self.directory}/{step} is of another model ({len(theirs)} '
                      f'arrays, ours {len(ours)}); {self.remedy}')
    return None

  def restore(self, abstract_state, step: int | None = None, with_best_state: bool = False,
              members: int | None = None):
    """(state, meta, best state or None) of `step`, or of the latest readable step; None when
    there is none. with_best_state: also read the best state saved beside it, if any.

    members: the number of members of a state stacked on a leading axis (padded to a multiple
    of the devices). A checkpoint of the same members written on another device count (another
    padding) is read whole onto this mesh and re-padded: its members come back, in
    `abstract_state`'s shardings."""
    self.wait()
    steps = [step] if step is not None else sorted(self.all_steps(), reverse=True)
    unreadable = []
    target = abstract_state
    for s in steps:
      saved_size = self._check_structure(s, target, members)
      abstract_state = target if saved_size is None else _resized(target, saved_size)
      items = dict(state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore())
      try:
        if with_best_state:
          meta = self._manager.restore(s, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
          if meta['meta'].get('has_best_state'):
            items['best_state'] = ocp.args.StandardRestore(abstract_state)
        restored = self._manager.restore(s, args=ocp.args.Composite(**items))
      except Exception as e:  # pylint: disable=broad-except
        if 'is not compatible with the stored shape' in str(e):
          # A readable checkpoint of another layout (members padded to another device count):
          # nothing is moved aside, and starting over is not the advice.
          raise UserError(f'checkpoint {self.directory}/{s} holds arrays of other shapes than '
                          f'this run makes ({str(e).split(".")[0]}): it is of another model or '
                          f'layout; {self.remedy} (for members: the device count it was '
                          'trained with)') from None
        if step is not None:
          raise UserError(f'checkpoint {self.directory}/{s} cannot be read: {e}') from None
        logging.warning('checkpoint %s/%d cannot be read (%s: %s); falling back to the one '
                        'before it', self.directory, s, type(e).__name__, str(e)[:200])
        unreadable.append(s)
        continue
      self._move_aside(unreadable)
      states = [restored['state'], restored.get('best_state')]
      if saved_size is not None:
        states = [None if x is None else _repadded(x, members, target) for x in states]
      return states[0], restored['meta'], states[1] if 'best_state' in items else None
    if steps:
      raise UserError(f'no readable checkpoint in {self.directory} (steps {steps}); '
                      f'{self.remedy}')
    return None

  def _move_aside(self, steps: list[int]) -> None:
    """Unreadable checkpoints go to corrupted_checkpoints/ (kept for inspection, not deleted),
    so that training can save those steps again."""
    if not steps:
      return
    if jax.process_index() == 0:
      aside = os.path.join(os.path.dirname(self.directory), 'corrupted_checkpoints')
      os.makedirs(aside, exist_ok=True)
      for s in steps:
        target = os.path.join(aside, f'{s}-{time.strftime("%Y%m%d-%H%M%S")}')
        os.replace(os.path.join(self.directory, str(s)), target)
        logging.warning('moved the unreadable checkpoint %d to %s', s, target)
    from library import parallel  # pylint: disable=import-outside-toplevel
    parallel.barrier('unreadable checkpoints moved')
    self._manager.reload()

  def close(self) -> None:
    if self._manager is not None:
      self._manager.close()
      self._manager = None


def restore_latest_raw(directory: str) -> dict | None:
  """The latest readable checkpoint's state as saved (nested dicts of arrays), read only.

  For starting another model from this one (`model_init`): no structure is imposed and the
  directory is never written to.
  """
  from absl import logging as absl_logging  # pylint: disable=import-outside-toplevel
  verbosity = absl_logging.get_verbosity()
  absl_logging.set_verbosity(absl_logging.ERROR)   # orbax warns that read_only means no saves
  try:
    manager = ocp.CheckpointManager(os.path.abspath(directory),
                                    options=ocp.CheckpointManagerOptions(read_only=True))
  finally:
    absl_logging.set_verbosity(verbosity)
  try:
    for step in sorted(manager.all_steps(), reverse=True):
      try:
        return manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore()))['state']
      except Exception as e:  # pylint: disable=broad-except
        logging.warning('checkpoint %s/%d cannot be read (%s); trying the one before it',
                        directory, step, str(e)[:200])
    return None
  finally:
    manager.close()
