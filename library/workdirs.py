"""A training run's workdir: what it may be, who holds it, and starting over.

One run per workdir at a time. The main process holds an exclusive lock (`flock`) on
`<workdir>/.lock` from before it reads the workdir to its exit; the file names the holder.
- A second run on the same workdir refuses at once, with one line naming that process, and
  writes nothing.
- A lock whose holder was killed is released by the operating system with the process; the
  next run takes it over and says so (the file still names the dead holder).
- If the workdir is removed or replaced while a run holds it (rm -rf and a new run started in
  the same place), the lock file at the path is no longer the one held: the old run writes
  nothing more there (`Lock.check` before every checkpoint and the results).
- A run refused for bad input after the lock was taken leaves the workdir as it found it: the
  lock file is emptied, or removed if this run made it, and so is a workdir (and parents) it
  made, while the lock is still held.

flock is per host: on a filesystem shared by several hosts (NFS, GCS FUSE) it does not
exclude a run on another host.
"""
import datetime
import fcntl
import os
import shutil
import socket
import time

import jax

from library import config as config_lib
from library.errors import UserError

LOCK = '.lock'


def check_path(workdir: str) -> None:
  """A one-line UserError for a workdir that cannot be one: empty, a file, or under a file."""
  if not workdir:
    raise UserError('--workdir is empty; give the folder the run writes to')
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise UserError(f'--workdir={workdir} is a file, not a folder; give a folder (it is made '
                    'if missing)')
  if os.path.isdir(workdir):
    if not os.access(workdir, os.W_OK | os.X_OK):
      raise UserError(f'--workdir={workdir} is not writable by this user')
    return
  parent = os.path.dirname(_first_missing(workdir))
  if not os.path.isdir(parent):
    raise UserError(f'--workdir={workdir} is inside {parent}, which is a file')
  if not os.access(parent, os.W_OK | os.X_OK):
    raise UserError(f'--workdir={workdir} cannot be made: {parent} is not writable')


def check_config(workdir: str, config, start_over: bool) -> None:
  """Refuses a workdir whose checkpoints are another experiment's, unless starting over."""
  config_path = os.path.join(workdir, 'config.json')
  ckpt_dir = os.path.join(workdir, 'checkpoints')
  has_run = os.path.isdir(ckpt_dir) and any(n.isdigit() for n in os.listdir(ckpt_dir))
  if has_run and not start_over and os.path.exists(config_path):
    with open(config_path) as f:
      saved = f.read()
    config_lib.from_json(saved, config_path)    # a damaged one is named as such
    mismatches = config_lib.resume_mismatches(saved, config)
    if mismatches:
      raise UserError(f'{workdir} holds checkpoints of a different config ({mismatches[0]} '
                      f'differs, {len(mismatches)} keys in all); use another --workdir or '
                      'rerun with --start_over to move the old run aside')


def prepare(workdir: str, start_over: bool) -> None:
  """Creates the workdir; starting over moves an old run aside (`previous-<time>/`)."""
  names = [n for n in os.listdir(workdir) if n != LOCK] if os.path.isdir(workdir) else []
  if start_over and names:
    if jax.process_index() == 0:
      aside = os.path.join(workdir, time.strftime('previous-%Y%m%d-%H%M%S'))
      os.makedirs(aside)
      for name in names:
        if not name.startswith('previous-'):
          shutil.move(os.path.join(workdir, name), os.path.join(aside, name))
      print(f'--start_over: moved the previous run in {workdir} to {aside}', flush=True)
  os.makedirs(workdir, exist_ok=True)
  from library import parallel  # pylint: disable=import-outside-toplevel
  parallel.barrier('workdir prepared')     # no process reads it before process 0 moved it


def _read(fd: int) -> str:
  os.lseek(fd, 0, os.SEEK_SET)
  return os.read(fd, 4096).decode(errors='replace').strip()


class Lock:
  """`with Lock(workdir):` holds the workdir for this run (a no-op when not `enabled`)."""

  def __init__(self, workdir: str, enabled: bool = True):
    self.workdir, self.enabled = workdir, enabled
    self.path = os.path.join(workdir, LOCK)
    self.fd, self.created, self.made_file = None, None, False

  def __enter__(self) -> 'Lock':
    if not self.enabled:
      return self
    self.created = _first_missing(self.workdir)   # the highest folder this run makes
    os.makedirs(self.workdir, exist_ok=True)
    while True:
      self.made_file = not os.path.exists(self.path)
      fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
      try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except BlockingIOError:
        holder = _read(fd) or 'another process'
        os.close(fd)
        raise UserError(f'{self.workdir} is in use by {holder}: one run per workdir at a '
                        'time; wait for it to end or give another --workdir') from None
      self.fd, self.inode = fd, os.fstat(fd).st_ino
      if self.ours():
        break
      # A refused run removed this file between our open and our lock: open the one there.
      fcntl.flock(fd, fcntl.LOCK_UN)
      os.close(fd)
      os.makedirs(self.workdir, exist_ok=True)
    previous = _read(fd)
    if previous:
      print(f'note: {self.workdir} was held by {previous}, which ended without releasing '
            'it (killed?); this run takes it over', flush=True)
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    since = datetime.datetime.now().strftime('%Y-%m-%d %H:%M:%S')
    os.write(fd, f'process {os.getpid()} on {socket.gethostname()} since {since}\n'.encode())
    return self

  def ours(self) -> bool:
    try:
      return os.stat(self.path).st_ino == self.inode
    except FileNotFoundError:
      return False

  def check(self) -> None:
    """Before writing: a UserError if the workdir is no longer the one this run holds."""
    if self.fd is not None and not self.ours():
      raise UserError(f'{self.workdir} was removed or replaced while this run held it; '
                      'this run writes nothing more there')

  def __exit__(self, exc_type, exc, tb) -> None:
    if self.fd is None:
      return
    try:
      if self.ours():
        os.ftruncate(self.fd, 0)       # released: an empty lock names no holder
        if exc_type is not None and self.made_file:
          # Refused: leave no lock file it made, and no workdir (or parent) it made if
          # nothing else is in it. Removed while still held, so no run can come between.
          os.remove(self.path)
          if self.created and not os.listdir(self.workdir):
            _remove_empty(os.path.abspath(self.workdir), self.created)
    except OSError:
      pass                             # a folder someone else filled meanwhile stays
    finally:
      fcntl.flock(self.fd, fcntl.LOCK_UN)
      os.close(self.fd)
      self.fd = None


def _first_missing(path: str) -> str | None:
  """The highest folder of `path` that does not exist yet, or None if `path` exists."""
  missing = os.path.abspath(path)
  if os.path.exists(missing):
    return None
  while not os.path.exists(os.path.dirname(missing)):
    missing = os.path.dirname(missing)
  return missing


def _remove_empty(folder: str, top: str) -> None:
  """Removes `folder` and its parents up to `top`, each only while empty."""
  while True:
    os.rmdir(folder)
    if folder == top or os.listdir(os.path.dirname(folder)):
      return
    folder = os.path.dirname(folder)
