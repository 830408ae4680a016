"""A persistent cache of traced programs, next to JAX's persistent cache of compiled ones.

JAX's compilation cache skips XLA's compilation on a rerun, but every run still traces the
Python function to a jaxpr and lowers it to StableHLO first: for the 3.6 cross-validation
program that is half a second, most of a warm rerun. Here a traced program is saved with
`jax.export` (its StableHLO) and a rerun deserializes it instead of tracing; compiling it then
hits JAX's compilation cache as before.

The key covers everything the trace depends on: the function's name and the experiment's
config, the shapes, dtypes and shardings of the arguments, the compiler options, the platform
and device count, the versions of jax, jaxlib, flax and optax, and the source code of
`library/` and `projects/`. Any change traces afresh. An entry that cannot be read is ignored
(and traced again), never an error.

An entry is the exported program's bytes and its output tree structure. The structure is
pickled (a PyTreeDef has no other serialized form) and read back by an unpickler that accepts
nothing but PyTreeDefs and the dataclass and namedtuple types they name (TrainState, optax's
states): an entry, even a crafted one, cannot run code (tested).
"""
import dataclasses
import functools
import gc
import hashlib
import importlib.metadata
import io
import os
import pickle
import threading

import jax

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@functools.lru_cache(maxsize=1)
def _source_digest() -> str:
  digest = hashlib.sha256()
  for top in ('library', 'projects'):
    for folder, _, files in sorted(os.walk(os.path.join(_ROOT, top))):
      for name in sorted(files):
        if name.endswith('.py'):
          path = os.path.join(folder, name)
          digest.update(os.path.relpath(path, _ROOT).encode())
          with open(path, 'rb') as f:
            digest.update(f.read())
  return digest.hexdigest()


def _versions() -> str:
  out = []
  for package in ('jax', 'jaxlib', 'flax', 'optax'):
    try:
      out.append(f'{package}={importlib.metadata.version(package)}')
    except importlib.metadata.PackageNotFoundError:
      out.append(f'{package}=?')
  return ','.join(out)


def _describe(x) -> str:
  sharding = getattr(x, 'sharding', None)
  spec = getattr(sharding, 'spec', None)
  mesh = getattr(sharding, 'mesh', None)
  where = f'{tuple(mesh.shape.items())}:{spec}' if mesh is not None else str(type(sharding))
  return f'{x.shape}:{x.dtype}:{where}'


def _key(name: str, context: str, leaves, treedef, compiler_options) -> str:
  digest = hashlib.sha256()
  for part in (name, context, str(treedef), ';'.join(_describe(x) for x in leaves),
               repr(sorted((compiler_options or {}).items())), jax.default_backend(),
               str(jax.device_count()), _versions(), _source_digest()):
    digest.update(part.encode())
    digest.update(b'\0')
  return digest.hexdigest()


def gc_paused(fn):
  """fn, with Python's cyclic garbage collector paused while it runs.

  The first call of a jitted function traces, lowers and compiles it. Tracing allocates many
  short-lived objects, and the collections they trigger walk every object of the process
  (~210,000 once flax, optax and orbax are loaded). For the 6.2 LSTM's training step, the
  trace took 0.53 s with the collector and 0.21 s without (medians of 6 fresh processes each,
  alternating, 2-core CPU; JAX's jaxpr_trace_duration timer). Lowering and XLA's compile did
  not change. `python -m scripts.benchmark` reports these phases. Later calls only dispatch,
  and the pause costs them two C calls. Cyclic garbage made meanwhile is collected after the
  call, as usual.
  """

  @functools.wraps(fn)
  def call(*args, **kwargs):
    if not gc.isenabled():
      return fn(*args, **kwargs)
    gc.disable()
    try:
      return fn(*args, **kwargs)
    finally:
      gc.enable()

  return call


class TraceCache:
  """Compiles functions, reusing traced programs saved by an earlier run.

    cache = TraceCache(config.compilation_cache_dir, context=<what the functions close over>)
    init = cache.compile(init_fn, (seeds, example), name='init')
    ...
    cache.save_in_background()   # while the main thread waits on the device
    cache.finish()               # after the timed part: waits for the saves

  A miss compiles as jax.jit(fn).lower(*args).compile() does and saves the trace later, off
  the critical path; a hit compiles the saved program (no tracing, no lowering).
  """

  def __init__(self, cache_dir: str, context: str):
    self.directory = os.path.join(os.path.expanduser(cache_dir), 'traces') if cache_dir else ''
    self.context = context
    self.status: dict[str, str] = {}
    self._pending = []
    self._thread = None

  @gc_paused
  def compile(self, fn, args: tuple, *, name: str, compiler_options=None, donate_argnums=()):
    """fn compiled for args (arrays or ShapeDtypeStructs): a callable taking and returning the
    same pytrees as fn. Python's garbage collector is paused meanwhile (gc_paused)."""
    jitted = jax.jit(fn, donate_argnums=donate_argnums, compiler_options=compiler_options)
    if not self.directory:
      self.status[name] = 'off'
      return jitted.lower(*args).compile()
    leaves, in_tree = jax.tree.flatten(args)
    donate = tuple(i for i, leaf in enumerate(leaves)
                   if any(leaf is x for a in donate_argnums for x in jax.tree.leaves(args[a])))
    path = os.path.join(self.directory,
                        _key(name, self.context, leaves, in_tree, compiler_options) + '.bin')
    entry = _read(path)
    if entry is None:
      self.status[name] = 'miss'
      abstract = [jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, 'sharding', None))
                  for x in leaves]
      self._pending.append((fn, in_tree, abstract, path, donate, compiler_options))
      return jitted.lower(*args).compile()
    self.status[name] = 'hit'
    exported, out_tree = entry
    compiled = _compile_exported(exported, leaves, donate, compiler_options)

    def call(*call_args):
      return jax.tree.unflatten(out_tree, compiled(*jax.tree.leaves(call_args)))

    return call

  def save_in_background(self) -> None:
    """Traces and saves the missed functions in a thread (the device work releases the GIL)."""
    if self._pending and (self._thread is None or not self._thread.is_alive()):
      self._thread = threading.Thread(target=self._save_all, daemon=True)
      self._thread.start()

  def finish(self) -> None:
    """Waits until every missed function compiled so far is saved."""
    if self._thread is not None:
      self._thread.join()
      self._thread = None
    self._save_all()

  def _save_all(self) -> None:
    """Exports each missed function, saves it, and compiles it once so that JAX's compilation
    cache holds the saved program's executable too (a rerun then neither traces nor compiles)."""
    while self._pending:
      fn, in_tree, abstract, path, donate, compiler_options = self._pending.pop(0)
      holder = {}

      def flat(*flat_args, fn=fn, in_tree=in_tree, holder=holder):
        out_leaves, holder['out_tree'] = jax.tree.flatten(
            fn(*jax.tree.unflatten(in_tree, flat_args)))
        return out_leaves

      try:
        exported = jax.export.export(jax.jit(flat))(*abstract)
        _compile_exported(exported, abstract, donate, compiler_options)
      except Exception:  # pylint: disable=broad-except
        continue      # a program jax.export cannot save is traced again next time
      _write(path, exported, holder['out_tree'])


def _compile_exported(exported, leaves, donate, compiler_options):
  return jax.jit(exported.call, donate_argnums=donate,
                 compiler_options=compiler_options).lower(*leaves).compile()


class _TreeUnpickler(pickle.Unpickler):
  """Only what a pickled PyTreeDef refers to: PyTreeDef itself, JAX's registry, and the
  dataclass or namedtuple types of its nodes."""

  def find_class(self, module, name):
    if (module, name) in (('jaxlib._jax.pytree', 'PyTreeDef'),
                          ('jax._src.tree_util', 'default_registry')):
      return super().find_class(module, name)
    if module.split('.')[0] in ('library', 'projects', 'optax', 'flax', 'jax'):
      found = super().find_class(module, name)
      if isinstance(found, type) and (dataclasses.is_dataclass(found) or (
          issubclass(found, tuple) and hasattr(found, '_fields'))):
        return found
    raise pickle.UnpicklingError(f'{module}.{name} is not a pytree node type')


def _read(path: str):
  """(exported, out_tree) of an entry, or None if absent, damaged or not ours."""
  try:
    with open(path, 'rb') as f:
      blob = f.read()
    size = int.from_bytes(blob[:8], 'little')
    exported = jax.export.deserialize(bytearray(blob[8:8 + size]))
    return exported, _TreeUnpickler(io.BytesIO(blob[8 + size:])).load()
  except Exception:  # pylint: disable=broad-except
    return None     # absent, truncated, crafted or from an incompatible version: trace again


def _write(path: str, exported, out_tree) -> None:
  try:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    program = bytes(exported.serialize())
    tmp = f'{path}.{os.getpid()}.tmp'
    with open(tmp, 'wb') as f:
      f.write(len(program).to_bytes(8, 'little') + program + pickle.dumps(out_tree))
    os.replace(tmp, path)
  except (OSError, pickle.PicklingError, TypeError, ValueError):
    pass            # a read-only or full cache: the next run traces again
