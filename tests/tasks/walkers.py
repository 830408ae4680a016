"""A task without a dataset: a network learns sin(3x) at the positions of random walkers.

The walkers are the task's own "environment": a batch of positions in [-1, 1], one per
walker, each moved every step by noise drawn on the device from fold_in(rng, step). Their
state is split over the devices ('data' axis) instead of replicated, as a DQN's batch of
environments would be; the network's parameters are replicated. Every evaluation writes the
learnt curve as text and as a small PNG. What it proves about the loop: no dataset, durations
in steps, a state laid out by the task, artifacts, resume of an environment's state.
"""
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.sharding import NamedSharding, PartitionSpec as P

from library import config as config_lib, optimizers
from library.task import Task
from projects.mlp.models import MLP


@flax.struct.dataclass
class WalkersState:
  step: jax.Array
  params: Any
  opt_state: Any
  positions_W: jax.Array    # the environment: one position per walker
  rng: jax.Array


def default_task_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({'walkers': 64, 'hidden': 32, 'step_size': 0.3})


def validate_task_config(config) -> None:
  config_lib.check_known_keys(config.task_config, default_task_config(), 'task_config.')


def target(x):
  return jnp.sin(3.0 * x)


def make_task(config, data, total_steps: int) -> Task:
  assert data is None
  t = config.task_config
  model = MLP(hidden=(t.hidden, t.hidden), num_outputs=1)
  tx, schedule = optimizers.make_optimizer(config.optimizer, total_steps)

  def init(rng, batch):
    del batch
    params_rng, walk_rng, state_rng = jax.random.split(rng, 3)
    params = model.init(params_rng, jnp.zeros((1, 1)))['params']
    positions = jax.random.uniform(walk_rng, (t.walkers,), minval=-1.0, maxval=1.0)
    return WalkersState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                        positions_W=positions, rng=state_rng)

  def train_step(state, batch):
    del batch
    key = jax.random.fold_in(state.rng, state.step)
    noise = jax.random.uniform(key, state.positions_W.shape, minval=-t.step_size,
                               maxval=t.step_size)
    positions = jnp.clip(state.positions_W + noise, -1.0, 1.0)
    x_Wx1 = positions[:, None]

    def loss_fn(params):
      return jnp.mean(jnp.square(model.apply({'params': params}, x_Wx1) - target(x_Wx1)))

    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = {'loss': loss, 'mean_position': jnp.mean(positions),
               'param_norm': optax.tree.norm(params),
               'learning_rate': schedule(state.step) * optimizers.lr_scale(state.opt_state)}
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                         positions_W=positions), metrics

  def state_sharding(mesh):
    replicated = NamedSharding(mesh, P())
    return WalkersState(step=replicated, params=replicated, opt_state=replicated,
                        positions_W=NamedSharding(mesh, P('data')), rng=replicated)

  def artifacts(state, step):
    x = jnp.linspace(-1.0, 1.0, 9)[:, None]
    y = np.asarray(jax.jit(model.apply)({'params': state.params}, x))[:, 0]
    text = ''.join(f'{a:+.2f} {b:+.4f} {float(target(a)):+.4f}\n'
                   for a, b in zip(np.asarray(x)[:, 0], y))
    curve = np.clip(np.round((y + 1.0) * 127.5), 0, 255).astype(np.uint8)
    return {'curve': f'step {step}: x, network, sin(3x)\n' + text,
            'curve_image': np.tile(curve[None, :], (4, 1))}

  return Task(init=init, train_step=train_step, params=lambda state: state.params,
              summary=lambda batch: f'MLP {t.hidden}-{t.hidden}-1 on {t.walkers} walkers',
              state_sharding=state_sharding, artifacts=artifacts)
