"""The environments the DQN task acts in, behind one interface that jit-compiled steps call.

  env = environments.make(config.task_config)
  obs, env_state = env.reset(rng, n)                          # n environments
  step = env.step(rng, env_state, action)                     # a Step
  obs, env_state = env.eval_reset(rng, n, train_env_state)    # evaluation's own environments

Two kinds:
- `Gymnax`: JAX-native environments (CartPole-v1, the MinAtar games). Their state is arrays,
  stepped on the device inside the loop's compiled program and checkpointed with the rest.
- `Atari`: the Arcade Learning Environment (ale-py's `AtariVectorEnv`, a gymnasium vector env;
  the ROMs ship with ale-py), named like gymnasium's ids, 'ALE/Breakout-v5'. The emulators are
  C++ objects on the host, so a step is a host callback (`jax.experimental.io_callback`) inside
  the same compiled step: the loop, members and checkpoints are unchanged. Nature-DQN's
  preprocessing (Mnih et al. 2015) is ALE's own: grayscale, 84x84, a frame skip of 4 with the
  max of the last two frames, a stack of the last 4, up to 30 no-ops at reset, FIRE at reset,
  and (training only) a life lost counts as termination while the game goes on. Observations
  are (84, 84, 4) uint8, channels last like our convnets.

What the device state holds of an Atari environment is its identity and a step count. The
emulators are kept by this module, keyed by that identity, so several seeds (members) each act
in their own. A checkpoint cannot hold an emulator: on resume (or whenever the count does not
follow on from the emulators' own), the emulators are reset and that step's transitions are
marked `fresh` so that the task stores none of them. A resumed Atari run is therefore exact in
its networks, optimizer and replay buffer up to the kill, and its episodes restart; gymnax
runs resume bitwise. The emulators live on one host: Atari runs are single-process.

Evaluation steps every member's emulators until all of its games ended (a while_loop, its
callback effect-free); members already done are carried along by the batched loop, and
their emulators are not stepped again.
"""
import re
import weakref
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.experimental import io_callback

from library.errors import UserError


@flax.struct.dataclass
class Step:
  obs: Any             # (n, ...) observations to act on next (after any auto-reset)
  env_state: Any
  reward: jax.Array    # (n,) float32
  terminated: jax.Array  # (n,) bool: the bootstrap is zeroed (a life lost counts in training)
  truncated: jax.Array   # (n,) bool: the time limit; it bootstraps
  done: jax.Array      # (n,) bool: the episode (the whole game) ended: its return is complete
  final_obs: Any       # (n, ...) the observation each action really led to, before any reset
  fresh: jax.Array     # () bool: the environments were (re)started; no transition is real


def default_atari_config() -> ml_collections.ConfigDict:
  """task_config.atari: ALE's preprocessing (its defaults are Nature-DQN's)."""
  return ml_collections.ConfigDict({
      'frame_skip': 4,            # frames per action, the max of the last two observed
      'frame_stack': 4,
      'size': 84,                 # frames are size x size grayscale
      'noop_max': 30,             # random no-ops at each reset
      'sticky_actions': 0.25,     # repeat_action_probability: -v5's (Machado et al. 2018)
      'life_loss_terminates': True,  # training only; evaluation plays whole games
      'max_episode_frames': 108_000,  # 30 minutes of play at 60 frames/s
      'threads': 0,               # emulator threads (0: ALE's choice)
  })


def is_atari(name: str) -> bool:
  return name.startswith('ALE/')


def validate(t) -> None:
  """A one-line UserError for an unknown environment or bad task_config.atari settings."""
  if not is_atari(t.env):
    _gymnax_make(t.env)
    return
  a = t.atari
  for key in ('frame_skip', 'frame_stack', 'size', 'max_episode_frames'):
    if not isinstance(a[key], int) or a[key] < 1:
      raise UserError(f'task_config.atari.{key}={a[key]!r} must be an integer >= 1')
  for key in ('noop_max', 'threads'):
    if not isinstance(a[key], int) or a[key] < 0:
      raise UserError(f'task_config.atari.{key}={a[key]!r} must be an integer >= 0')
  if not 0.0 <= a.sticky_actions <= 1.0:
    raise UserError(f'task_config.atari.sticky_actions={a.sticky_actions} must be in [0, 1]')
  _game(t.env)


def make(t) -> 'Gymnax | Atari':
  """The environment of task_config `t` (validated)."""
  validate(t)
  return Atari(t.env, t.atari) if is_atari(t.env) else Gymnax(t.env)


def _gymnax_make(name: str):
  import gymnax  # pylint: disable=import-outside-toplevel
  if name not in gymnax.registered_envs:
    raise UserError(f'task_config.env={name!r} is not a gymnax environment or an Atari game '
                    f'(ALE/<Game>-v5); gymnax has {", ".join(gymnax.registered_envs)}')
  return gymnax.make(name)


class Gymnax:
  """A gymnax 1.x environment, n at once by vmap; auto-reset is gymnax's."""

  def __init__(self, name: str):
    self.name = name
    self.env, self.params = _gymnax_make(name)
    self.num_actions = self.env.action_space(self.params).n
    self.obs_shape = tuple(self.env.observation_space(self.params).shape)
    self.max_steps = int(self.params.max_steps_in_episode)   # an episode's step limit

  def reset(self, rng, n: int):
    return jax.vmap(self.env.reset, in_axes=(0, None))(jax.random.split(rng, n), self.params)

  def step(self, rng, env_state, action) -> Step:
    obs, env_state, reward, terminated, truncated, info = jax.vmap(
        self.env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(rng, action.shape[0]), env_state, action, self.params)
    return Step(obs=obs, env_state=env_state, reward=reward, terminated=terminated,
                truncated=truncated, done=jnp.logical_or(terminated, truncated),
                final_obs=info['final_observation'], fresh=jnp.zeros((), bool))

  def eval_reset(self, rng, n: int, train_env_state):
    del train_env_state
    return self.reset(rng, n)

  eval_step = step


def _game(name: str) -> str:
  """'ALE/MsPacman-v5' -> 'ms_pacman', the ROM's name; a UserError for one ale-py lacks."""
  match = re.fullmatch(r'ALE/([A-Za-z0-9]+)-v5', name)
  try:
    from ale_py import roms  # pylint: disable=import-outside-toplevel
  except ImportError:
    raise UserError(f'task_config.env={name!r} needs ale-py: pip install "ale-py>=0.12"'
                    ) from None
  known = roms.get_all_rom_ids()
  game = re.sub(r'(?<!^)(?=[A-Z])', '_', match.group(1)).lower() if match else None
  if game not in known:
    examples = ', '.join('ALE/' + ''.join(w.title() for w in g.split('_')) + '-v5'
                         for g in ('breakout', 'pong', 'space_invaders'))
    raise UserError(f'task_config.env={name!r} is not an Atari game of ale-py: give '
                    f'ALE/<Game>-v5 with one of its {len(known)} games ({examples}, ...)')
  return game


class _Emulators:
  """n emulators of one game for one member, and how many steps they have taken."""

  def __init__(self, game: str, n: int, a, evaluation: bool):
    from ale_py.vector_env import AtariVectorEnv  # pylint: disable=import-outside-toplevel
    self.env = AtariVectorEnv(
        game, n, num_threads=a.threads, autoreset_mode='SameStep',
        max_num_frames_per_episode=a.max_episode_frames,
        repeat_action_probability=a.sticky_actions, img_height=a.size, img_width=a.size,
        grayscale=True, stack_num=a.frame_stack, frameskip=a.frame_skip, maxpool=True,
        noop_max=a.noop_max, episodic_life=False,
        life_loss_info=a.life_loss_terminates and not evaluation,
        reward_clipping=False, use_fire_reset=True)
    self.life_loss = a.life_loss_terminates and not evaluation
    self.count = 0
    self.lives = np.zeros(n, np.int64)
    self.last = None       # the last step's outputs, for evaluation's finished members

  def reset(self, seed: int):
    obs, info = self.env.reset(seed=seed)
    self.count, self.last = 0, None
    self.lives = np.asarray(info['lives'])
    return obs

  def step(self, action):
    obs, reward, terminated, truncated, info = self.env.step(action)
    lives = np.asarray(info['lives'])
    if self.life_loss:
      # A lost life terminates while the game goes on (fewer lives left); at the game's end
      # ALE's same-step auto-reset has already started the next game, whose lives are back
      # up (tested on a whole game of Breakout); or the time limit cut it.
      new_game = np.logical_or(np.logical_and(terminated, lives >= self.lives), truncated)
    else:
      new_game = np.logical_or(terminated, truncated)
    self.lives = lives
    self.count += 1
    final = obs
    if np.any(new_game) and 'final_obs' in info:
      final = np.where(new_game[:, None, None, None], info['final_obs'], obs)
    return obs, reward, terminated, truncated, new_game, final


class Atari:
  """Atari games through ale-py, stepped on the host by a callback in the compiled step."""

  def __init__(self, name: str, atari):
    self.name = name
    self.game = _game(name)
    self.settings = atari
    from ale_py import ALEInterface, LoggerMode, roms  # pylint: disable=import-outside-toplevel
    ale = ALEInterface()
    ale.setLoggerMode(LoggerMode.Error)
    ale.loadROM(str(roms.get_rom_path(self.game)))
    self.num_actions = len(ale.getMinimalActionSet())
    self.obs_shape = (atari.size, atari.size, atari.frame_stack)
    self.max_steps = atari.max_episode_frames // atari.frame_skip
    if jax.process_count() > 1:
      raise UserError(f'task_config.env={name!r}: Atari emulators run in one process; this '
                      f'run has {jax.process_count()} (train it on one host)')
    self._emulators = {}    # (role, identity, k-th member with that identity) -> _Emulators
    # Closed when this object goes (or at exit), not kept alive by an atexit hook.
    self._closer = weakref.finalize(self, _close_all, self._emulators)
    self._reset = {role: self._batched(self._host_reset, role, self._reset_shapes)
                   for role in ('train', 'eval')}
    self._step = {role: self._batched(self._host_step, role, self._step_shapes)
                  for role in ('train', 'eval')}

  def close(self):
    _close_all(self._emulators)

  # The device side. ---------------------------------------------------------------------

  def reset(self, rng, n: int):
    identity = jax.random.key_data(rng).astype(jnp.uint32).reshape(-1)[-2:]
    return self._reset['train'](identity, identity, jnp.zeros((n,), jnp.int32))

  def step(self, rng, env_state, action) -> Step:
    del rng   # the emulators' randomness is their own, seeded at reset
    return Step(*self._step['train'](env_state['identity'], env_state['count'],
                                     action.astype(jnp.int32)))

  def eval_reset(self, rng, n: int, train_env_state):
    seed = jax.random.key_data(rng).astype(jnp.uint32).reshape(-1)[-2:]
    return self._reset['eval'](train_env_state['identity'], seed, jnp.zeros((n,), jnp.int32))

  def eval_step(self, rng, env_state, action) -> Step:
    del rng
    return Step(*self._step['eval'](env_state['identity'], env_state['count'],
                                    action.astype(jnp.int32)))

  def _reset_shapes(self, m: int, n: int):
    return (jax.ShapeDtypeStruct((m, n, *self.obs_shape), jnp.uint8),)

  def _step_shapes(self, m: int, n: int):
    obs = jax.ShapeDtypeStruct((m, n, *self.obs_shape), jnp.uint8)
    flag = jax.ShapeDtypeStruct((m, n), jnp.bool_)
    return (obs, jax.ShapeDtypeStruct((m, n), jnp.float32), flag, flag, flag, obs,
            jax.ShapeDtypeStruct((m,), jnp.bool_))

  def _batched(self, host, role: str, shapes):
    """A device function of (identity (2,), x (2,) or (), per-environment array (n,)) that
    calls `host` once for all members: under the loop's vmap over members it receives their
    stacked arguments (a plain vmap of a callback would call it member by member)."""

    def call(identity, x, per_env):
      m, n = per_env.shape
      if role == 'eval' and host == self._host_step:
        # Evaluation steps until every game of every member ended: a while_loop whose
        # condition is per member under vmap, which JAX allows only for effect-free
        # callbacks. Its arguments (the step count) differ at every call, so none is merged.
        return jax.pure_callback(lambda *args: host(role, *args), shapes(m, n), identity, x,
                                 per_env)
      return io_callback(lambda *args: host(role, *args), shapes(m, n), identity, x, per_env)

    @jax.custom_batching.custom_vmap
    def one(identity, x, per_env):
      return _finish(jax.tree.map(lambda a: a[0], call(identity[None], x[None],
                                                       per_env[None])), identity, x)

    @one.def_vmap
    def _(axis_size, in_batched, identity, x, per_env):
      identity, x, per_env = (a if batched else jnp.broadcast_to(a, (axis_size, *a.shape))
                              for a, batched in zip((identity, x, per_env), in_batched))
      out = call(identity, x, per_env)
      result = jax.vmap(_finish)(out, identity, x)
      return result, jax.tree.map(lambda _: True, result)

    return one

  # The host side. -----------------------------------------------------------------------

  def _members(self, role, identities):
    """One set of emulators per member: identities repeat where the loop pads the members
    to a multiple of the devices (copies of member 0), so the k-th copy has its own."""
    seen = {}
    for identity in map(tuple, np.asarray(identities).tolist()):
      k = seen.get(identity, 0)
      seen[identity] = k + 1
      yield (role, identity, k)

  def _emulators_for(self, key, n):
    emulators = self._emulators.get(key)
    if emulators is None or emulators.env.num_envs != n:
      if emulators is not None:
        emulators.env.close()
      emulators = self._emulators[key] = _Emulators(self.game, n, self.settings,
                                                    key[0] == 'eval')
    return emulators

  @staticmethod
  def _seed(*words) -> int:
    return int(np.random.SeedSequence([int(w) for w in words]).generate_state(1)[0] >> 1)

  def _host_reset(self, role, identities, seeds, per_env):
    n = per_env.shape[1]
    out = []
    for key, seed, k in zip(self._members(role, identities), np.asarray(seeds),
                            range(len(per_env))):
      emulators = self._emulators_for(key, n)
      out.append(emulators.reset(self._seed(*seed, k, role == 'eval')))
    return (_channels_last(np.stack(out)),)

  def _host_step(self, role, identities, counts, actions):
    n = actions.shape[1]
    results = []
    for key, count, action in zip(self._members(role, identities), np.asarray(counts),
                                  np.asarray(actions)):
      emulators = self._emulators_for(key, n)
      if role == 'eval' and emulators.last is not None and count < emulators.count:
        # A member whose games all ended, carried along while others play (the batched
        # while_loop runs every member's step): its result is discarded; nothing is stepped.
        results.append(emulators.last)
        continue
      if emulators.count != count:
        # Not the emulators this state was stepping (a resumed run): start them again.
        obs = emulators.reset(self._seed(*key[1], key[2], count))
        emulators.count = int(count) + 1
        no = np.zeros(n, bool)
        results.append((obs, np.zeros(n, np.float32), no, no, no, obs, True))
      else:
        obs, reward, terminated, truncated, new_game, final = emulators.step(action)
        emulators.last = (obs, reward.astype(np.float32), terminated, truncated, new_game,
                          final, False)
        results.append(emulators.last)
    obs, reward, terminated, truncated, done, final, fresh = map(np.stack, zip(*results))
    return (_channels_last(obs), reward, terminated.astype(bool), truncated.astype(bool),
            done.astype(bool), _channels_last(final), fresh.astype(bool))


def _close_all(emulators: dict) -> None:
  for one in emulators.values():
    one.env.close()
  emulators.clear()


def _channels_last(frames):
  return np.ascontiguousarray(np.moveaxis(frames, 2, -1), dtype=np.uint8)


def _finish(out, identity, x):
  """The callback's outputs as (obs, env_state) or a Step's fields, for one member."""
  if len(out) == 1:                    # a reset: x is the seed, the count starts at 0
    return out[0], {'identity': identity, 'count': jnp.zeros((), jnp.int32)}
  obs, reward, terminated, truncated, done, final, fresh = out
  return (obs, {'identity': identity, 'count': x + 1}, reward, terminated, truncated, done,
          final, fresh)
