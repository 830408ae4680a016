"""The one module that owns orbax: save, keep the last K and the best, restore the latest.

Order on start (README, "Resume"): the latest step is restored if readable; an unreadable one
(half-deleted, corrupted) is skipped with a warning for the one before it; a checkpoint whose
tree does not match the model is refused (it is another experiment's). Writes are atomic:
orbax writes to a temporary directory and renames it when complete, so a kill during a save
leaves the previous checkpoints as they were.

Checksums: once a save is complete on disk, the writer records the size and CRC-32 of every
file of the step in `<step>/checksums.json` (written whole, then renamed). Every restore checks
them first: a step whose files differ (a flipped byte in an array, a truncated or missing
file) is unreadable like one orbax cannot read. A step without the record (written before
checksums were kept, or cut off between orbax's rename and the record) is used if orbax reads
it.

Readers (evaluate, predict, play, the notebook API) open the directory read only: nothing is
cleaned up, moved or locked, so a training run writing beside them is never disturbed; a step
the writer deletes while they read it is passed over for the newest one still there.
"""
import json
import logging
import os
import sys
import time
import zlib

import jax
import jax.numpy as jnp
import ml_collections
from ml_collections import config_dict
import orbax.checkpoint as ocp
from jax.sharding import NamedSharding, PartitionSpec
from orbax.checkpoint import checkpoint_managers

from library.errors import UserError

# The keys of this section that may differ between a run and its resume: how often to save and
# how many to keep change no value of the run.
RESUME_SAFE = frozenset({'every_steps', 'every_epochs', 'keep', 'async_save'})


def default_config() -> ml_collections.ConfigDict:
  """config.checkpoint: when to save, how many to keep, the best by a metric."""
  c = ml_collections.ConfigDict()
  c.every_steps = config_dict.placeholder(int)  # default: at each evaluation
  c.every_epochs = config_dict.placeholder(float)   # or every this many epochs
  c.keep = 2               # the last K, plus the best below
  c.best_metric = ''      # e.g. 'validation.accuracy'; '' keeps no best
  c.best_mode = 'max'
  # Saves return once the arrays are in host memory; orbax writes them while training goes on.
  c.async_save = True
  return c


def validate(config) -> None:
  """Raises UserError for a bad checkpoint setting (library.config.validate calls it)."""
  c = config.checkpoint
  if c.best_mode not in ('max', 'min'):
    raise UserError(f'checkpoint.best_mode={c.best_mode!r} is not max or min')
  if c.keep < 1:
    raise UserError(f'checkpoint.keep={c.keep} must be >= 1')


def closed_loop_filter(previous):
  """An unraisable-exception hook that drops what a failed checkpoint read leaves behind and
  passes everything else to `previous`.

  When orbax fails to read a checkpoint, asyncio.run closes its event loop while TensorStore's
  reads of that checkpoint are still finishing; their completion callbacks then schedule onto
  the closed loop, and Python prints each `RuntimeError: Event loop is closed` as an
  unraisable exception; the reads' own coroutines, collected with their errors never
  retrieved, print theirs too: a screenfull of tracebacks after the one useful warning (or
  error line), more or fewer as the threads' timing goes. Only those are dropped: asyncio's
  own closed-loop check, and coroutines of orbax's code (the failed read is reported by the
  restore that raised it)."""
  orbax_dir = os.path.dirname(os.path.abspath(ocp.__file__))

  def hook(unraisable):
    tb = unraisable.exc_traceback
    while tb is not None and tb.tb_next is not None:
      tb = tb.tb_next
    if (isinstance(unraisable.exc_value, RuntimeError)
        and str(unraisable.exc_value) == 'Event loop is closed' and tb is not None
        and tb.tb_frame.f_code.co_name == '_check_closed'
        and tb.tb_frame.f_code.co_filename.endswith(os.path.join('asyncio', 'base_events.py'))):
      return
    code = getattr(unraisable.object, 'cr_code', None)
    if code is not None and os.path.abspath(code.co_filename).startswith(orbax_dir):
      logging.debug('dropped the error of an abandoned orbax read: %s', unraisable.exc_value)
      return
    previous(unraisable)

  return hook


def _in_orbax(error: BaseException | None, orbax_dir: str) -> bool:
  """Whether `error`, or an error it was raised from, passed through orbax's code."""
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    tb = error.__traceback__
    while tb is not None:
      if os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(orbax_dir):
        return True
      tb = tb.tb_next
    error = error.__cause__ or error.__context__
  return False


class AbandonedReadFilter(logging.Filter):
  """Drops asyncio's "exception was never retrieved" reports of orbax's abandoned reads: a
  failed checkpoint read leaves its sibling reads' futures failing after the restore that
  raised has been handled (reported once, as a warning or an error line, by our code).
  Other never-retrieved errors are reported as asyncio reports them."""

  def __init__(self):
    super().__init__()
    self.orbax_dir = os.path.dirname(os.path.abspath(ocp.__file__))

  def filter(self, record: logging.LogRecord) -> bool:
    if 'exception was never retrieved' not in str(record.msg):
      return True
    error = record.exc_info[1] if record.exc_info else None
    # TensorStore's own futures carry no Python frames: their messages name the store.
    from_store = error is not None and any(
        word in str(error) for word in ('OCDBT', 'TensorStore', 'tensorstore'))
    return not (from_store or _in_orbax(error, self.orbax_dir))


# Installed on import: the callbacks can come before the failed read reaches our code.
sys.unraisablehook = closed_loop_filter(sys.unraisablehook)
logging.getLogger('asyncio').addFilter(AbandonedReadFilter())


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


CHECKSUMS = 'checksums.json'


def _crc32(path: str) -> int:
  crc = 0
  with open(path, 'rb') as f:
    while chunk := f.read(1 << 22):
      crc = zlib.crc32(chunk, crc)
  return crc


def file_checksums(step_dir: str) -> dict[str, list[int]]:
  """{path in the step: [size, CRC-32]} of every file of a step directory but the record."""
  sums = {}
  for root, _, files in os.walk(step_dir):
    for name in files:
      path = os.path.join(root, name)
      relative = os.path.relpath(path, step_dir)
      if not relative.startswith(CHECKSUMS):
        sums[relative] = [os.path.getsize(path), _crc32(path)]
  return dict(sorted(sums.items()))


def seal(step_dir: str) -> None:
  """Records the checksums of a complete step directory (the record written whole)."""
  record = {'algorithm': 'crc32', 'files': file_checksums(step_dir)}
  partial = os.path.join(step_dir, CHECKSUMS + '.partial')
  with open(partial, 'w') as f:
    json.dump(record, f)
  os.replace(partial, os.path.join(step_dir, CHECKSUMS))


def verify(step_dir: str) -> str | None:
  """What differs from a step's checksum record ('' for no record kept), None if nothing."""
  try:
    with open(os.path.join(step_dir, CHECKSUMS)) as f:
      recorded = json.load(f)['files']
  except FileNotFoundError:
    return ''
  except (OSError, ValueError, KeyError, TypeError) as e:
    return f'its checksum record is unreadable ({type(e).__name__})'
  found = file_checksums(step_dir)
  for path, (size, crc) in recorded.items():
    if path not in found:
      return f'{path} is missing'
    if found[path][0] != size:
      return f'{path} has {found[path][0]} bytes where {size} were written'
    if found[path][1] != crc:
      return f'{path} differs from what was written (its checksum)'
  return None


def _short(error: Exception) -> str:
  """An orbax read error in a line: its first, without TensorStore's multi-line spec."""
  text = str(error).split(' See full TensorStore details')[0].strip().splitlines()
  return f'{type(error).__name__}: {(text[0] if text else "")[:200]}'


class Unreadable(Exception):
  """A checkpoint whose files fail their checksums."""


class Checkpointer:

  def __init__(self, directory: str, keep: int, best_metric: str = '', best_mode: str = 'max',
               remedy: str = 'use another --workdir or --start_over', async_save: bool = True,
               read_only: bool = False):
    """async_save: save() returns once the arrays are copied to host memory, and orbax writes
    them in a background thread while training goes on (each save, read and close first waits
    for the one in flight). A checkpoint is still only a step directory once it is complete:
    orbax writes a temporary directory and renames it at the end, so a kill mid-write leaves
    the previous checkpoint as the latest (the temporary one is removed at the next start).

    read_only: a reader's view (evaluate, predict, ...): no save, no clean-up of temporary
    directories (a writer's save in flight), unreadable steps passed over and left in place."""
    # What the user can do about a checkpoint this run cannot use, in flags of the command
    # that reads it (training's own; evaluate and predict name scripts.train's).
    self.remedy = remedy
    self.read_only = read_only
    self.directory = os.path.abspath(directory)
    self.best_metric, self.best_mode = best_metric, best_mode
    # Steps passed over by the last restore, with why: [(step, reason)].
    self.skipped: list[tuple[int, str]] = []
    self._unsealed: list[int] = []
    # The items' handlers named up front: their metadata (shapes, for _check_structure) can be
    # read before any save or restore, and orbax does not warn that it cannot restore them.
    handlers = {'state': ocp.StandardCheckpointHandler(), 'meta': ocp.JsonCheckpointHandler(),
                'best_state': ocp.StandardCheckpointHandler()}
    from absl import logging as absl_logging  # pylint: disable=import-outside-toplevel
    verbosity = absl_logging.get_verbosity()
    if read_only:    # orbax warns that read_only means no saves: that is the point
      absl_logging.set_verbosity(absl_logging.ERROR)
    try:
      if read_only:
        options = ocp.CheckpointManagerOptions(read_only=True, create=False,
                                               cleanup_tmp_directories=False)
      else:
        policies = [checkpoint_managers.LatestN(n=keep)]
        if best_metric:
          policies.append(checkpoint_managers.BestN(
              get_metric_fn=lambda metrics: metrics[best_metric], reverse=best_mode == 'min',
              n=1, keep_checkpoints_without_metrics=False))
        options = ocp.CheckpointManagerOptions(
            preservation_policy=checkpoint_managers.AnyPreservationPolicy(policies),
            enable_async_checkpointing=async_save, create=True, cleanup_tmp_directories=True)
      self._manager = None
      self._retrying(lambda: setattr(self, '_manager', ocp.CheckpointManager(
          self.directory, options=options, item_handlers=handlers)))
    finally:
      absl_logging.set_verbosity(verbosity)

  def step_dir(self, step: int) -> str:
    return os.path.join(self.directory, str(step))

  def all_steps(self) -> list[int]:
    self.wait()
    if self.read_only:
      self._reload()    # a writer beside us adds and deletes steps
    return sorted(self._manager.all_steps())

  def _reload(self) -> None:
    self._retrying(self._manager.reload)

  def _retrying(self, listing) -> None:
    """orbax's listing of the steps, again when a step it listed was deleted before it could
    look at it (a writer's retention, beside a reader)."""
    for attempt in range(20):
      try:
        listing()
        return
      except FileNotFoundError:
        if attempt == 19 or not self.read_only:
          raise
        time.sleep(0.05)

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
    self.wait()   # the previous save sealed (orbax would wait for it here anyway)
    self._manager.save(step, args=args, metrics=metrics, force=True)
    self._unsealed.append(step)

  def wait(self) -> None:
    """Blocks until the save in flight, if any, is complete on disk, with its checksums."""
    if self._manager is None:
      return
    self._manager.wait_until_finished()
    unsealed, self._unsealed = self._unsealed, []
    if jax.process_index() == 0:
      for step in unsealed:
        if os.path.isdir(self.step_dir(step)):   # (not one the policy already deleted)
          seal(self.step_dir(step))

  def best_step(self) -> int | None:
    """The kept step with the best `best_metric` (None without one)."""
    if not self.best_metric:
      return None
    self.wait()
    scored = []
    for step in self.all_steps():
      if verify(self.step_dir(step)):
        continue
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
    `abstract_state`'s shardings.

    Steps passed over (unreadable, failing their checksums) are in `self.skipped`; the writer
    moves them aside, a reader leaves them in place."""
    self.wait()
    self.skipped, gone = [], set()
    while True:
      passed = gone | {s for s, _ in self.skipped}
      steps = [step] if step is not None else [
          s for s in sorted(self.all_steps(), reverse=True) if s not in passed]
      if not steps or (step is not None and step in passed):
        break
      s = steps[0]
      try:
        return self._restore_step(s, abstract_state, with_best_state, members)
      except UserError:
        raise
      except Exception as e:  # pylint: disable=broad-except
        if self.read_only and not os.path.isdir(self.step_dir(s)):
          gone.add(s)        # deleted by the writer's retention while we read it
          continue
        reason = str(e) if isinstance(e, Unreadable) else _short(e)
        if step is not None:
          raise UserError(f'checkpoint {self.directory}/{s} cannot be read: {reason}') from None
        logging.warning('checkpoint %s/%d cannot be read (%s); %s', self.directory, s, reason,
                        'passing over it' if self.read_only else
                        'falling back to the one before it')
        self.skipped.append((s, reason))
    if self.skipped or gone:
      raise UserError(f'no readable checkpoint in {self.directory} (steps '
                      f'{sorted(passed | gone, reverse=True)}); {self.remedy}')
    return None

  def _check_files(self, s: int) -> None:
    """Raises Unreadable for a step whose files fail their checksums, or, without checksums
    recorded, lacks one of orbax's own parts (state, meta)."""
    problem = verify(self.step_dir(s))
    if problem:
      raise Unreadable(f'its files fail their checksums: {problem}')
    absent = [item for item in ('state', 'meta')
              if not os.path.isdir(os.path.join(self.step_dir(s), item))]
    if absent:
      raise Unreadable(f'its parts are not all written: no {" and no ".join(absent)}')

  def _restore_step(self, s: int, target, with_best_state: bool, members: int | None):
    """restore()'s one step: checksums, structure, the read (and, for the writer, the steps
    passed over before it moved aside)."""
    self._check_files(s)
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
      raise
    if not self.read_only:
      self._move_aside([x for x, _ in self.skipped])
    states = [restored['state'], restored.get('best_state')]
    if saved_size is not None:
      states = [None if x is None else _repadded(x, members, target) for x in states]
    return states[0], restored['meta'], states[1] if 'best_state' in items else None

  def restore_raw(self) -> dict | None:
    """The latest readable step's state as saved (nested dicts of arrays); None if none."""
    for s in reversed(self.all_steps()):
      try:
        self._check_files(s)
        return self._manager.restore(s, args=ocp.args.Composite(
            state=ocp.args.StandardRestore()))['state']
      except Exception as e:  # pylint: disable=broad-except
        logging.warning('checkpoint %s/%d cannot be read (%s); trying the one before it',
                        self.directory, s, e if isinstance(e, Unreadable) else _short(e))
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
        os.replace(self.step_dir(s), target)
        logging.warning('moved the unreadable checkpoint %d to %s', s, target)
    from library import parallel  # pylint: disable=import-outside-toplevel
    parallel.barrier('unreadable checkpoints moved')
    self._reload()

  def close(self) -> None:
    """Waits for the save in flight and seals it (a SIGTERM's last checkpoint too), then
    closes orbax's manager, whose threads must not outlive the interpreter."""
    if self._manager is not None:
      try:
        self.wait()
      finally:
        self._manager.close()
        self._manager = None


def restore_latest_raw(directory: str) -> dict | None:
  """The latest readable checkpoint's state as saved (nested dicts of arrays), read only.

  For starting another model from this one (`model_init`): no structure is imposed and the
  directory is never written to.
  """
  ckpt = Checkpointer(directory, keep=1, read_only=True)
  try:
    return ckpt.restore_raw()
  finally:
    ckpt.close()
