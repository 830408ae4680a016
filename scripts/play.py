"""Plays greedy episodes of a trained DQN workdir and writes them as a GIF.

  python -m scripts.play --workdir=/tmp/dqn --episodes=3 --output=/tmp/dqn/play.gif

Loads the workdir's best state (--checkpoint; with members.keep_best, each member's best
evaluation, what results.json reports; with members, --member picks one: the seed's index),
plays --episodes episodes with the greedy policy in the environment of its config (whole
games, as evaluation plays them), prints
each return, and writes the frames of the first one (every --every-th, up to its end) as a
GIF (projects/reinforcement/render.py draws them).
"""
from absl import flags

from library import cli

_WORKDIR = flags.DEFINE_string('workdir', None, 'a workdir trained with a DQN config')
_EPISODES = flags.DEFINE_integer('episodes', 3, 'greedy episodes to play')
_MEMBER = flags.DEFINE_integer('member', 0, 'which member (seed index) of a members run')
_OUTPUT = flags.DEFINE_string('output', '', 'the GIF (default: WORKDIR/artifacts/play.gif)')
_EVERY = flags.DEFINE_integer('every', 2, 'keep every N-th frame in the GIF')
_SEED = flags.DEFINE_integer('seed', 0, 'seed of the episodes')
_CHECKPOINT = flags.DEFINE_string('checkpoint', 'best', 'latest, best (the kept best state of '
                                  'each member) or a step')
flags.mark_flags_as_required(['workdir'])


def main(_):
  import os  # pylint: disable=import-outside-toplevel
  import jax  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  from library import inference, members  # pylint: disable=import-outside-toplevel
  from library.errors import UserError  # pylint: disable=import-outside-toplevel
  from projects.reinforcement import dqn, render  # pylint: disable=import-outside-toplevel
  config = inference.load_config(_WORKDIR.value)
  if config.task != 'projects.reinforcement.dqn':
    raise UserError(f'{_WORKDIR.value} is a run of task={config.task!r}, not a DQN')
  if _EPISODES.value < 1 or _EVERY.value < 1:
    raise UserError(f'--episodes={_EPISODES.value} and --every={_EVERY.value} must be >= 1')
  state, meta = inference.load_state(_WORKDIR.value, _CHECKPOINT.value)
  params = state.params
  if members.enabled(config):
    count = int(np.asarray(jax.tree.leaves(params)[0]).shape[0])
    if not 0 <= _MEMBER.value < count:
      raise UserError(f'--member={_MEMBER.value} is not in [0, {count})')
    params = jax.tree.map(lambda x: x[_MEMBER.value], params)
  train_env_state = state.env_state
  if members.enabled(config):
    train_env_state = jax.tree.map(lambda x: x[_MEMBER.value], train_env_state)
  first = None
  for i, (total, length, frames) in enumerate(dqn.greedy_episodes(
      config, params, train_env_state, _EPISODES.value, _SEED.value)):
    print(f'episode {i}: return {total:.1f}, {length} steps', flush=True)
    first = frames if first is None else first
  path = _OUTPUT.value or os.path.join(_WORKDIR.value, 'artifacts', 'play.gif')
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  pictures = [render.frame(config.task_config.env, f) for f in first[::_EVERY.value]]
  pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=40, loop=0)
  print(f'wrote {path} ({len(pictures)} frames of episode 0, member {_MEMBER.value}, '
        f'{_CHECKPOINT.value} state of the checkpoint of step {meta["step"]})')


if __name__ == '__main__':
  cli.run(main)
