"""Devices, the ('data',) mesh, and placing host arrays on it, on one host or many.

Data parallelism is plain `jax.jit` over a Mesh: batches are sharded on 'data', parameters
and optimizer state are replicated, and XLA inserts the all-reduce that averages gradients.
"""
import itertools
import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from library.errors import UserError


def initialize_distributed(force: bool = False) -> None:
  """Starts jax.distributed when launched on several hosts.

  Cloud TPU pods and SLURM are detected by JAX itself (`force`, the scripts' --multihost);
  elsewhere set JAX_COORDINATOR_ADDRESS=host:port, JAX_NUM_PROCESSES and JAX_PROCESS_ID on
  every host (README, "Several hosts").
  """
  if jax.distributed.is_initialized():
    return
  if 'JAX_COORDINATOR_ADDRESS' in os.environ:
    num = os.environ.get('JAX_NUM_PROCESSES')
    pid = os.environ.get('JAX_PROCESS_ID')
    jax.distributed.initialize(num_processes=int(num) if num else None,
                               process_id=int(pid) if pid else None)
  elif force:
    jax.distributed.initialize()


def make_mesh(devices=None) -> Mesh:
  devices = list(devices) if devices is not None else jax.devices()
  return Mesh(np.array(devices), ('data',))


def check_divisible(batch_size: int, mesh: Mesh, name: str = 'batch_size') -> None:
  if batch_size % mesh.size:
    raise UserError(f'{name}={batch_size} does not divide by the {mesh.size} devices; use a '
                    f'multiple of {mesh.size}')


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def sharded_on_batch(mesh: Mesh, batch_axis: int = 0) -> NamedSharding:
  return NamedSharding(mesh, P(*([None] * batch_axis), 'data'))


def put(x: np.ndarray, sharding: NamedSharding) -> jax.Array:
  """A global array from a host array every process holds whole (works on several hosts)."""
  x = np.asarray(x)
  return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])


def put_tree(tree, sharding: NamedSharding):
  return jax.tree.map(lambda x: put(x, sharding), tree)


def is_main_process() -> bool:
  return jax.process_index() == 0


_BARRIERS = itertools.count()   # every process passes the same barriers in the same order
BARRIER_TIMEOUT_S = 1800


def barrier(name: str) -> None:
  """Every process waits here for the others (a no-op on one process): after something that
  process 0 alone did to the shared workdir, before any process reads it.

  A barrier of jax.distributed's coordination service (orbax's), not a collective: hosts may
  arrive minutes apart (one still reading its data), where the first gloo collective of a
  CPU run gives up after 30 s."""
  if jax.process_count() > 1 and not jax.distributed.is_initialized():
    from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel
    multihost_utils.sync_global_devices(name)    # (no coordination service to wait at)
  elif jax.process_count() > 1:
    from orbax.checkpoint import multihost  # pylint: disable=import-outside-toplevel
    multihost.get_barrier_sync_fn()(key=f'dlwr.{name}.{next(_BARRIERS)}',
                                    timeout_ms=BARRIER_TIMEOUT_S * 1000)


def preempted(sync_id: int) -> bool:
  """True on every process at the same call once any of them received SIGTERM (JAX's
  preemption service: the processes agree on the next sync_id after the notice). sync_id
  must advance by one per call, alike on every process. False on one process, whose SIGTERM
  the loop's own handler takes."""
  if jax.process_count() == 1:
    return False
  from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel
  return multihost_utils.reached_preemption_sync_point(sync_id)
