"""Deep Q-learning as a task of the one loop, environment included: a task without a dataset.

  python -m scripts.train --config=configs/reinforcement/cartpole_dqn.py --workdir=/tmp/dqn

Every step of the loop is, inside the one jit-compiled step:
1. act in `num_envs` environments at once (epsilon-greedy on the online network), with
   auto-reset: gymnax 1.x's on the device, or Atari games through ale-py on the host
   (projects/reinforcement/environments.py; `env='ALE/Breakout-v5'`, Nature-DQN's
   preprocessing, rewards clipped to [-1, 1] for learning with `clip_rewards`);
2. store the N transitions in the replay ring buffer (projects/reinforcement/replay.py), each
   with the observation it really ended in and whether it terminated;
3. one gradient step on a batch drawn from the buffer (once `learning_starts` steps are
   collected), on the TD error against the target network's bootstrap,
   r + gamma * (1 - terminated) * Q_target(s', a*), with a* = argmax Q_target (DQN) or argmax
   Q_online (Double DQN, `double`); the loss is the mean squared TD error (`loss`, halved as
   optax's l2_loss) or the Huber loss. Truncation (the time limit) bootstraps; only termination
   zeroes it;
4. every `target_every` steps the target network moves to the online one: a copy (tau 1, hard)
   or Polyak averaging (tau < 1).

The environments, the buffer, both networks and the optimizer are the state: a checkpoint holds
them all, so a killed run resumes bitwise (Atari: all but the emulators, which restart their
episodes on resume; environments.py says how). Several seeds are members of one run
(`members.scheme=seeds`, `members.k`): each its own environments, buffer and networks, trained
together by jax.vmap. Evaluation (`eval_step`, at each evaluation of the loop) plays
`eval_episodes` greedy episodes to their end and reports their mean `episode_return`.

The optimizer is `config.optimizer` (library/optimizers.py), the Q-network `config.model` (any
linen model of the codebase: projects.mlp.models.MLP for vector observations, a convnet for
MinAtar's 10x10 frames); its outputs are one Q-value per action.
"""
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax

from library import config as config_lib, optimizers
from library.errors import UserError
from library.task import Task, make_model, summary_table
from projects.reinforcement import environments, replay


@flax.struct.dataclass
class DQNState:
  step: jax.Array
  params: Any
  target_params: Any
  opt_state: Any
  env_state: Any        # the N environments' state (environments.py)
  obs: Any              # (N, ...) their current observations
  buffer: replay.Buffer
  returns: jax.Array    # (N,) the running return of each environment's episode
  last_return: jax.Array  # (N,) the return of each environment's last finished episode
  episodes: jax.Array   # () episodes finished so far, all environments
  rng: jax.Array


def default_task_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({
      'env': 'CartPole-v1',     # a gymnax environment id, or an Atari game: 'ALE/Breakout-v5'
      'num_envs': 10,           # environments stepped together; one update per loop step
      'buffer_size': 10_000,    # transitions kept
      'batch_size': 128,        # transitions per update
      'learning_starts': 1_000,  # loop steps of collection before the first update
      'gamma': 0.99,
      'target_every': 50,       # loop steps between target updates
      'tau': 1.0,               # 1: copy the online network; < 1: Polyak averaging
      'double': False,          # Double DQN targets
      'epsilon_start': 1.0,
      'epsilon_end': 0.05,
      'epsilon_fraction': 0.5,  # of the run's steps over which epsilon falls linearly
      'loss': 'mse',            # mse (CleanRL's and purejaxrl's on CartPole) or huber
      'huber_delta': 1.0,
      'eval_episodes': 100,     # greedy episodes per evaluation
      'eval_epsilon': 0.0,
      'clip_rewards': False,    # learn from rewards clipped to [-1, 1] (Nature DQN's, Atari)
      'atari': environments.default_atari_config(),   # used by ALE/ games only
  })


def validate_task_config(config) -> None:
  t = config.task_config
  config_lib.check_known_keys(t, default_task_config(), 'task_config.')
  for key in ('num_envs', 'buffer_size', 'batch_size', 'target_every', 'eval_episodes'):
    if not isinstance(t[key], int) or t[key] < 1:
      raise UserError(f'task_config.{key}={t[key]!r} must be an integer >= 1')
  if t.num_envs > t.buffer_size:
    raise UserError(f'task_config.num_envs={t.num_envs} must be <= task_config.buffer_size='
                    f'{t.buffer_size}')
  for key, low, high in (('gamma', 0.0, 1.0), ('tau', 0.0, 1.0), ('epsilon_start', 0.0, 1.0),
                         ('epsilon_end', 0.0, 1.0), ('epsilon_fraction', 0.0, 1.0),
                         ('eval_epsilon', 0.0, 1.0)):
    if not low <= t[key] <= high or (key == 'tau' and t[key] == 0):
      raise UserError(f'task_config.{key}={t[key]} must be in '
                      f'{"(0, 1]" if key == "tau" else f"[{low:g}, {high:g}]"}')
  if t.loss not in ('mse', 'huber'):
    raise UserError(f'task_config.loss={t.loss!r} is not one of mse, huber')
  if t.learning_starts < 0:
    raise UserError(f'task_config.learning_starts={t.learning_starts} must be >= 0')
  environments.validate(t)


def epsilon_schedule(t, total_steps: int) -> optax.Schedule:
  """Linear from epsilon_start to epsilon_end over epsilon_fraction of the run, then flat."""
  steps = max(1, int(t.epsilon_fraction * total_steps))
  return optax.linear_schedule(t.epsilon_start, t.epsilon_end, steps)


def td_targets(q_next_target, q_next_online, reward, terminated, gamma: float, double: bool):
  """r + gamma * (1 - terminated) * Q_target(s', a*): a* = argmax of the target network's
  values (DQN) or of the online network's (Double DQN, van Hasselt et al. 2016)."""
  chooser = q_next_online if double else q_next_target
  best = jnp.argmax(chooser, axis=-1)
  bootstrap = jnp.take_along_axis(q_next_target, best[:, None], axis=-1)[:, 0]
  return reward + gamma * (1.0 - terminated) * bootstrap


def target_update(params, target_params, step, every: int, tau: float):
  """The target network after loop step `step` (1-based count of updates done)."""
  moved = optax.incremental_update(params, target_params, tau)
  due = step % every == 0
  return jax.tree.map(lambda m, o: jnp.where(due, m, o), moved, target_params)


def make_task(config, data, total_steps: int) -> Task:
  if data is not None:
    raise UserError('the DQN makes its own data: set no data.source')
  t = config.task_config
  env = environments.make(t)
  num_actions = env.num_actions
  model = make_model(config.model)
  tx, schedule = optimizers.make_optimizer(config.optimizer, total_steps)
  epsilon = epsilon_schedule(t, total_steps)
  obs_shape = env.obs_shape

  def q_values(params, obs):
    return model.apply({'params': params}, obs.astype(jnp.float32))

  def act(rng, params, obs, eps):
    explore_rng, action_rng = jax.random.split(rng)
    greedy = jnp.argmax(q_values(params, obs), axis=-1).astype(jnp.int32)
    random_action = jax.random.randint(action_rng, greedy.shape, 0, num_actions)
    explore = jax.random.uniform(explore_rng, greedy.shape) < eps
    return jnp.where(explore, random_action, greedy)

  def init(rng, batch):
    del batch
    params_rng, env_rng, state_rng = jax.random.split(rng, 3)
    obs, env_state = env.reset(env_rng, t.num_envs)
    params = model.init(params_rng, jnp.zeros((1, *obs_shape), jnp.float32))['params']
    out = jax.eval_shape(lambda p: q_values(p, obs), params)
    if out.shape[-1] != num_actions:
      raise UserError(f'model outputs {out.shape[-1]} values; {t.env} has {num_actions} '
                      'actions: set model.kwargs.num_outputs')
    return DQNState(step=jnp.zeros((), jnp.int32), params=params,
                    target_params=jax.tree.map(jnp.copy, params), opt_state=tx.init(params),
                    env_state=env_state, obs=obs,
                    buffer=replay.empty(t.buffer_size, obs[0]),
                    returns=jnp.zeros((t.num_envs,), jnp.float32),
                    last_return=jnp.zeros((t.num_envs,), jnp.float32),
                    episodes=jnp.zeros((), jnp.int32), rng=state_rng)

  def loss_fn(params, target_params, batch):
    q = q_values(params, batch['obs'])
    q_taken = jnp.take_along_axis(q, batch['action'][:, None], axis=-1)[:, 0]
    q_next_target = q_values(target_params, batch['next_obs'])
    q_next_online = q_values(params, batch['next_obs']) if t.double else None
    target = jax.lax.stop_gradient(td_targets(q_next_target, q_next_online, batch['reward'],
                                              batch['terminated'], t.gamma, t.double))
    if t.loss == 'huber':
      loss = jnp.mean(optax.huber_loss(q_taken, target, delta=t.huber_delta))
    else:
      loss = jnp.mean(optax.l2_loss(q_taken, target))   # 0.5 * error^2
    return loss, jnp.mean(q_taken)

  def train_step(state, batch):
    del batch
    rng = jax.random.fold_in(state.rng, state.step)
    act_rng, env_rng, sample_rng = jax.random.split(rng, 3)
    eps = epsilon(state.step)
    action = act(act_rng, state.params, state.obs, eps)
    out = env.step(env_rng, state.env_state, action)
    reward = jnp.clip(out.reward, -1.0, 1.0) if t.clip_rewards else out.reward
    # Fresh environments (an Atari run resumed) have no real transition to store.
    buffer = replay.add(state.buffer, state.obs, action, reward, out.final_obs,
                        out.terminated, valid=jnp.logical_not(out.fresh))
    returns = state.returns + out.reward          # the game's own score
    last_return = jnp.where(out.done, returns, state.last_return)
    returns = jnp.where(jnp.logical_or(out.done, out.fresh), 0.0, returns)
    obs, env_state, done = out.obs, out.env_state, out.done

    batch = replay.sample(buffer, sample_rng, t.batch_size)
    (loss, q_mean), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params, state.target_params, batch)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    learning = state.step >= t.learning_starts
    params = jax.tree.map(lambda new, old: jnp.where(learning, new, old),
                          optax.apply_updates(state.params, updates), state.params)
    opt_state = jax.tree.map(lambda new, old: jnp.where(learning, new, old), opt_state,
                             state.opt_state)
    step = state.step + 1
    target_params = target_update(params, state.target_params, step, t.target_every, t.tau)
    episodes = state.episodes + jnp.sum(done.astype(jnp.int32))
    metrics = {'loss': loss, 'q_mean': q_mean, 'epsilon': jnp.asarray(eps, jnp.float32),
               # The mean over environments of their last finished episode (0 before one).
               'episode_return': jnp.mean(last_return),
               'learning_rate': jnp.asarray(schedule(state.step) *
                                            optimizers.lr_scale(state.opt_state), jnp.float32)}
    new = state.replace(step=step, params=params, target_params=target_params,
                        opt_state=opt_state, env_state=env_state, obs=obs, buffer=buffer,
                        returns=returns, last_return=last_return, episodes=episodes)
    return new, metrics

  def play(params, rng, episodes: int, eps: float, train_env_state):
    """The returns of `episodes` whole episodes played to their end (or the time limit), in
    evaluation's own environments (whole games, the real score)."""
    reset_rng, rng = jax.random.split(rng)
    obs, env_state = env.eval_reset(reset_rng, episodes, train_env_state)

    def one(carry):
      obs, env_state, total, alive, rng, i = carry
      rng, act_rng, env_rng = jax.random.split(rng, 3)
      action = act(act_rng, params, obs, eps)
      out = env.eval_step(env_rng, env_state, action)
      total = total + out.reward * alive
      alive = alive * (1.0 - out.done.astype(jnp.float32))
      return out.obs, out.env_state, total, alive, rng, i + 1

    carry = (obs, env_state, jnp.zeros((episodes,)), jnp.ones((episodes,)), rng,
             jnp.zeros((), jnp.int32))
    total = jax.lax.while_loop(lambda c: jnp.logical_and(c[5] < env.max_steps,
                                                         jnp.any(c[3] > 0)), one, carry)[2]
    return total

  def eval_step(state, batch):
    del batch
    # The evaluation's key is a function of the state: the same episodes on a resumed run.
    rng = jax.random.fold_in(jax.random.fold_in(state.rng, state.step), 1)
    total = play(state.params, rng, t.eval_episodes, t.eval_epsilon, state.env_state)
    return {'episode_return': jnp.sum(total),
            'count': jnp.asarray(t.eval_episodes, jnp.float32)}

  def summary(batch):
    del batch
    table = summary_table(model, jnp.zeros((1, *obs_shape), jnp.float32))
    return (f'{t.env}: observations {tuple(obs_shape)}, {num_actions} actions; '
            f'{t.num_envs} environments, replay of {t.buffer_size:,}\n{table}')

  return Task(init=init, train_step=train_step, eval_step=eval_step, summary=summary,
              params=lambda state: state.params,
              variables=lambda state: {'params': state.params},
              predict=lambda state, obs: q_values(state.params, obs))



def greedy_episodes(config, params, train_env_state, episodes: int, seed: int):
  """Yields (return, length, observations) of `episodes` greedy episodes of one member's
  `params`, one dispatch a step, in the environments evaluation plays in (whole games, the
  real score): what scripts.play prints and draws. Observations are kept for the first
  episode only (an Atari game can be 27,000 frames)."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  env = environments.make(config.task_config)
  model = make_model(config.model)

  @jax.jit
  def start(rng):
    return env.eval_reset(rng, 1, train_env_state)

  @jax.jit
  def one(obs, env_state, rng):
    action = jnp.argmax(model.apply({'params': params}, obs.astype(jnp.float32)), axis=-1)
    out = env.eval_step(rng, env_state, action.astype(jnp.int32))
    return out.obs, out.env_state, out.reward[0], out.done[0]

  for i, key in enumerate(jax.random.split(jax.random.PRNGKey(seed), episodes)):
    reset_key, key = jax.random.split(key)
    obs, env_state = start(reset_key)
    frames, total, length = [], 0.0, 0
    for length in range(1, env.max_steps + 1):
      if i == 0:
        frames.append(np.asarray(obs[0]))
      key, step_key = jax.random.split(key)
      obs, env_state, reward, done = one(obs, env_state, step_key)
      total += float(reward)
      if bool(done):
        break
    yield total, length, frames
