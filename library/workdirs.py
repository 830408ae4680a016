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
- A run refused for bad input after the lock was taken leaves the workdir as it found it: a
  workdir it created holding only the lock is removed again, and the lock file is emptied.

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
  parent = os.path.dirname(os.path.abspath(workdir))
  while not os.path.exists(parent):
    parent = os.path.dirname(parent)
  if not os.path.isdir(parent):
    raise UserError(f'--workdir={workdir} is inside {parent}, which is a file')
  if not os.access(parent, os.W_OK) and not os.path.isdir(workdir):
    raise UserError(f'--workdir={workdir} cannot be made: {parent} is not writable')


def check_config(workdir: str, config, start_over: bool) -> None:
  """Refuses a workdir whose checkpoints are another experiment's, unless starting over."""
  config_path = os.path.join(workdir, 'config.json')
  ckpt_dir = os.path.join(workdir, 'checkpoints')
  has_run = os.path.isdir(ckpt_dir) and any(n.isdigit() for n in os.listdir(ckpt_dir))
  if has_run and not start_over and os.path.exists(config_path):
    with open(config_path) as f:
      mismatches = config_lib.resume_mismatches(f.read(), config)
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


def _read(fd: int) -> str:
  os.lseek(fd, 0, os.SEEK_SET)
  return os.read(fd, 4096).decode(errors='replace').strip()


class Lock:
  """`with Lock(workdir):` holds the workdir for this run (a no-op when not `enabled`)."""

  def __init__(self, workdir: str, enabled: bool = True):
    self.workdir, self.enabled = workdir, enabled
    self.path = os.path.join(workdir, LOCK)
    self.fd, self.created = None, None

  def __enter__(self) -> 'Lock':
    if not self.enabled:
      return self
    # The highest folder this run makes (the workdir, or a parent that was missing too).
    missing = os.path.abspath(self.workdir)
    while not os.path.exists(os.path.dirname(missing)):
      missing = os.path.dirname(missing)
    self.created = None if os.path.exists(missing) else missing
    os.makedirs(self.workdir, exist_ok=True)
    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = _read(fd) or 'another process'
      os.close(fd)
      raise UserError(f'{self.workdir} is in use by {holder}: one run per workdir at a time; '
                      'wait for it to end or give another --workdir') from None
    previous = _read(fd)
    if previous:
      print(f'note: {self.workdir} was held by {previous}, which ended without releasing '
            'it (killed?); this run takes it over', flush=True)
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    since = datetime.datetime.now().strftime('%Y-%m-%d %H:%M:%S')
    os.write(fd, f'process {os.getpid()} on {socket.gethostname()} since {since}\n'.encode())
    self.fd, self.inode = fd, os.fstat(fd).st_ino
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
    ours = self.ours()
    if ours:
      os.ftruncate(self.fd, 0)       # released: an empty lock names no holder
    fcntl.flock(self.fd, fcntl.LOCK_UN)
    os.close(self.fd)
    self.fd = None
    if ours and exc_type is not None and self.created and os.listdir(self.workdir) == [LOCK]:
      os.remove(self.path)           # refused before writing anything: leave no workdir
      folder = os.path.abspath(self.workdir)
      while True:
        os.rmdir(folder)
        if folder == self.created or os.listdir(os.path.dirname(folder)):
          break
        folder = os.path.dirname(folder)
