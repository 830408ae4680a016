"""Deep Q-learning (projects/reinforcement): the replay ring buffer, the targets, the schedules,
and the task in the one loop (members, evaluation, resume after SIGKILL)."""
import json
import re
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs.reinforcement import cartpole_dqn
from library import train
from library.errors import UserError
from projects.reinforcement import dqn, environments, replay
from tests.conftest import run_script


def _add(buffer, values):
  v = jnp.asarray(values, jnp.float32)
  return replay.add(buffer, v[:, None], v.astype(jnp.int32), v, v[:, None] + 0.5,
                    v > 100)


def test_the_ring_buffer_wraps_around_and_samples_only_what_it_holds():
  buffer = replay.empty(5, jnp.zeros((1,)))
  buffer = _add(buffer, [1, 2, 3])
  assert int(buffer.size) == 3 and int(buffer.position) == 3
  drawn = replay.sample(buffer, jax.random.PRNGKey(0), 400)
  assert set(np.asarray(drawn['action']).tolist()) == {1, 2, 3}      # never an empty slot
  np.testing.assert_array_equal(drawn['next_obs'][:, 0], drawn['obs'][:, 0] + 0.5)
  buffer = _add(buffer, [4, 5, 6, 7])                # 6 and 7 overwrite the oldest, 1 and 2
  assert int(buffer.size) == 5 and int(buffer.position) == 2
  np.testing.assert_array_equal(buffer.action, [6, 7, 3, 4, 5])
  np.testing.assert_array_equal(buffer.obs[:, 0], [6, 7, 3, 4, 5])
  drawn = replay.sample(buffer, jax.random.PRNGKey(1), 1000)
  counts = np.bincount(np.asarray(drawn['action']), minlength=8)
  assert counts[1] == counts[2] == 0 and all(counts[k] > 150 for k in (3, 4, 5, 6, 7))


def test_dqn_and_double_dqn_targets_on_a_hand_made_example():
  q_target = jnp.array([[1.0, 5.0], [2.0, 0.0], [3.0, 4.0]])
  q_online = jnp.array([[9.0, 0.0], [0.0, 9.0], [0.0, 1.0]])
  reward = jnp.array([1.0, 0.0, 2.0])
  terminated = jnp.array([0.0, 0.0, 1.0])
  # DQN: max of the target's values; Double: the target's value at the online argmax.
  np.testing.assert_allclose(dqn.td_targets(q_target, None, reward, terminated, 0.5, False),
                             [1 + 0.5 * 5, 0 + 0.5 * 2, 2.0])
  np.testing.assert_allclose(dqn.td_targets(q_target, q_online, reward, terminated, 0.5, True),
                             [1 + 0.5 * 1, 0 + 0.5 * 0, 2.0])


def test_truncation_bootstraps_from_the_final_observation_and_termination_does_not():
  """CartPole at its time limit: gymnax resets the environment, yet the stored transition ends
  in the real last observation, flagged not terminated, so its target bootstraps."""
  cartpole = environments.Gymnax('CartPole-v1')
  env, params = cartpole.env, cartpole.params
  params = params.replace(max_steps_in_episode=3)
  obs, state = env.reset(jax.random.PRNGKey(0), params)
  buffer = replay.empty(8, obs)
  for i in range(3):
    new_obs, state, reward, terminated, truncated, info = env.step(
        jax.random.PRNGKey(i + 1), state, 1, params)
    buffer = replay.add(buffer, obs[None], jnp.array([1]), reward[None],
                        info['final_observation'][None], terminated[None])
    last_obs, obs = obs, new_obs
  assert bool(truncated) and not bool(terminated)
  np.testing.assert_array_equal(buffer.terminated[:3], [0, 0, 0])
  # The stored next observation is one physics step on from the previous one, not the reset.
  assert not np.allclose(buffer.next_obs[2], obs)
  np.testing.assert_allclose(buffer.next_obs[2][0], last_obs[0] + 0.02 * last_obs[1], rtol=1e-5)
  q = jnp.array([[1.0, 2.0]])
  assert float(dqn.td_targets(q, None, jnp.array([1.0]), buffer.terminated[2:3], 0.9,
                              False)[0]) == pytest.approx(2.8)
  assert float(dqn.td_targets(q, None, jnp.array([1.0]), jnp.array([1.0]), 0.9,
                              False)[0]) == 1.0


def test_the_target_network_cadence_and_the_epsilon_schedule():
  online, target = {'w': jnp.ones(3)}, {'w': jnp.zeros(3)}
  for step in (1, 2, 3, 5):
    np.testing.assert_array_equal(dqn.target_update(online, target, step, 4, 1.0)['w'], 0.0)
  np.testing.assert_array_equal(dqn.target_update(online, target, 4, 4, 1.0)['w'], 1.0)
  np.testing.assert_allclose(dqn.target_update(online, target, 8, 4, 0.25)['w'], 0.25)
  t = ml_collections.ConfigDict({'epsilon_start': 1.0, 'epsilon_end': 0.1,
                                 'epsilon_fraction': 0.5})
  eps = dqn.epsilon_schedule(t, 200)
  np.testing.assert_allclose([eps(0), eps(50), eps(100), eps(150)], [1.0, 0.55, 0.1, 0.1],
                             rtol=1e-6)


def _config(*variants, **task):
  config = cartpole_dqn.get_config(','.join(('smoke',) + variants))
  config.compilation_cache_dir = ''
  config.task_config.update(task)
  return config


def test_dqn_learns_cartpole_in_the_one_loop(tmp_path):
  """One seed, 4,000 steps of 10 environments: the greedy policy balances far longer than the
  untrained one (about 9 steps: it pushes one way) or the mostly random play of the first
  steps (about 22). Measured: 61 greedy, 80 in training at the end."""
  config = cartpole_dqn.get_config('one_seed')
  config.compilation_cache_dir = ''
  config.progress_bar = False
  config.num_train_steps = 4_000
  config.eval_every_steps = 2_000
  config.task_config.learning_starts = 500
  config.task_config.eval_episodes = 20
  config.model.kwargs.hidden = (64, 64)
  results = train.train_and_evaluate(config, str(tmp_path / 'dqn'))
  records = [json.loads(line) for line in open(tmp_path / 'dqn' / 'metrics.jsonl')]
  train_records = [r for r in records if r['split'] == 'train']
  assert train_records[0]['epsilon'] > train_records[-1]['epsilon']
  assert train_records[-1]['episode_return'] > 2 * train_records[0]['episode_return'], records
  assert results['validation']['episode_return'] > 45, records


def test_seeds_are_members_and_each_equals_its_run_alone(tmp_path):
  config = _config()
  results = train.train_and_evaluate(config, str(tmp_path / 'members'))
  rows = results['members']
  assert [r['seed'] for r in rows] == [0, 1, 2] and 'val_episode_return' in rows[0]
  from library import inference  # pylint: disable=import-outside-toplevel
  state, _ = inference.load_state(str(tmp_path / 'members'))
  alone = _config('one_seed')
  alone.seed = 1
  train.train_and_evaluate(alone, str(tmp_path / 'alone'), devices=jax.devices()[:1])
  single, _ = inference.load_state(str(tmp_path / 'alone'))
  for stacked, one in zip(jax.tree.leaves(state), jax.tree.leaves(single)):
    np.testing.assert_allclose(np.asarray(stacked)[1], np.asarray(one), rtol=1e-5, atol=1e-6)
  # Members keep each one's best evaluation (members.keep_best): seed 1's is the best of the
  # evaluations of seed 1 alone.
  alone_evaluations = [r['episode_return'] for r in map(
      json.loads, open(tmp_path / 'alone' / 'metrics.jsonl')) if r['split'] == 'validation']
  np.testing.assert_allclose(rows[1]['val_episode_return'], max(alone_evaluations), rtol=1e-6)
  assert rows[1]['best_step'] in (20, 40)
  played = run_script('scripts.play', f'--workdir={tmp_path / "members"}', '--member=2',
                      '--episodes=2', f'--output={tmp_path / "play.gif"}')
  assert played.returncode == 0, played.stderr[-2000:]
  assert played.stdout.count('episode 1: return') == 1 and (tmp_path / 'play.gif').stat().st_size > 0
  from PIL import Image  # pylint: disable=import-outside-toplevel
  with Image.open(tmp_path / 'play.gif') as gif:
    assert gif.n_frames >= 2 and gif.size == (300, 200)
  bad = run_script('scripts.play', f'--workdir={tmp_path / "members"}', '--member=3')
  assert bad.returncode == 2 and '--member=3 is not in [0, 3)' in bad.stderr


def test_sigkill_midway_then_rerun_is_bitwise_environments_and_buffer_included(tmp_path):
  from tests.test_scripts import kill_midway_then_rerun  # pylint: disable=import-outside-toplevel
  from library import inference  # pylint: disable=import-outside-toplevel

  def command(workdir):   # one compilation cache: the rerun and the straight run skip XLA
    return [sys.executable, '-m', 'scripts.train',
            '--config=configs/reinforcement/cartpole_dqn.py:smoke', f'--workdir={workdir}',
            '--config.members.k=2', '--config.num_train_steps=300',
            '--config.eval_every_steps=100', '--config.checkpoint.every_steps=50',
            '--config.steps_per_dispatch.cpu=10',
            f'--config.compilation_cache_dir={tmp_path / "cache"}']

  killed, straight = kill_midway_then_rerun(command, tmp_path, at_least=100)
  a, _ = inference.load_state(str(killed))
  b, _ = inference.load_state(str(straight))
  assert int(np.max(a.step)) == 300
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):     # buffer, envs, networks, rng
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  assert (json.loads((killed / 'results.json').read_text())['members'] ==
          json.loads((straight / 'results.json').read_text())['members'])


def test_minatar_breakout_smoke_steps_with_a_convnet(tmp_path):
  """Two seeds of MinAtar Breakout's 10x10x4 frames through the convnet: a few real steps,
  one evaluation; frames render for scripts.play."""
  from configs.reinforcement import minatar_breakout_dqn  # pylint: disable=import-outside-toplevel
  from projects.reinforcement import render  # pylint: disable=import-outside-toplevel
  config = minatar_breakout_dqn.get_config('smoke')
  config.compilation_cache_dir = ''
  results = train.train_and_evaluate(config, str(tmp_path / 'breakout'))
  assert results['steps'] == 20 and len(results['members']) == 2
  assert all(r['val_episode_return'] >= 0 for r in results['members'])
  obs, _ = environments.Gymnax('Breakout-MinAtar').reset(jax.random.PRNGKey(0), 1)
  obs = obs[0]
  assert render.frame('Breakout-MinAtar', np.asarray(obs)).size == (300, 300)


@pytest.mark.parametrize('key,value,fragment', [
    ('env', 'Pong-v5', "task_config.env='Pong-v5' is not a gymnax environment or an Atari game"),
    ('env', 'ALE/Pongg-v5', "task_config.env='ALE/Pongg-v5' is not an Atari game of ale-py"),
    ('tau', 0.0, 'task_config.tau=0.0 must be in (0, 1]'),
    ('num_envs', 100, 'task_config.num_envs=100 must be <= task_config.buffer_size=64'),
    ('loss', 'l1', "task_config.loss='l1' is not one of mse, huber")])
def test_bad_dqn_settings_are_one_line_errors_before_anything_is_written(tmp_path, key, value,
                                                                         fragment):
  with pytest.raises(UserError, match=re.escape(fragment)):
    train.train_and_evaluate(_config(**{key: value}), str(tmp_path / 'w'))
  assert not (tmp_path / 'w').exists()


def test_a_model_with_the_wrong_number_of_outputs_is_a_one_line_error(tmp_path):
  config = _config()
  config.model.kwargs.num_outputs = 3
  with pytest.raises(UserError, match='model outputs 3 values; CartPole-v1 has 2 actions'):
    train.train_and_evaluate(config, str(tmp_path / 'w'))


def test_atari_through_ale_py_in_the_one_loop_resumed_and_played_back(tmp_path):
  """Real Breakout (ale-py's emulators on the host, called back from the compiled step) for
  two seeds: 6 steps, then resumed to 12 with new emulators (as a new process has), one
  evaluation each time; the replay's pairs follow on within each stretch, the restarted step
  stores nothing; then scripts.play's episodes and frames."""
  from configs.reinforcement import atari_dqn  # pylint: disable=import-outside-toplevel
  from library import inference  # pylint: disable=import-outside-toplevel
  from projects.reinforcement import render  # pylint: disable=import-outside-toplevel
  config = atari_dqn.get_config('smoke')
  config.compilation_cache_dir = ''
  workdir = tmp_path / 'breakout'
  config.num_train_steps = 6
  train.train_and_evaluate(config, str(workdir))
  config.num_train_steps = 12        # resumed: make_task makes new emulators, as on a rerun
  results = train.train_and_evaluate(config, str(workdir))
  assert results['steps'] == 12 and results['resumed_from_step'] == 6
  assert len(results['members']) == 2
  assert all(r['val_episode_return'] >= 0 for r in results['members'])
  state, _ = inference.load_state(str(workdir))
  buffer = jax.tree.map(np.asarray, state.buffer)
  assert buffer.obs.shape[1:] == (32, 84, 84, 4) and buffer.obs.dtype == np.uint8
  # 12 steps x 2 emulators, less the 2 transitions of step 7, the emulators' restart.
  np.testing.assert_array_equal(buffer.size[:2], [22, 22])
  np.testing.assert_array_equal(np.asarray(state.env_state['count'])[:2], [12, 12])
  assert not np.array_equal(buffer.obs[0], buffer.obs[1])        # each seed its own games
  # Within each stretch (slots 0-11: steps 1-6; 12-21: steps 8-12) each emulator's
  # transition t ends where its t + 1 starts (no game ended), and a stack moves on one frame.
  for lo, hi in ((0, 12), (12, 22)):
    np.testing.assert_array_equal(buffer.next_obs[:2, lo:hi - 2], buffer.obs[:2, lo + 2:hi])
    np.testing.assert_array_equal(buffer.obs[:2, lo + 2:hi, ..., :3],
                                  buffer.obs[:2, lo:hi - 2, ..., 1:])
  # Across the restart they do not: step 8 starts in a new game, not where step 6 ended.
  assert not np.array_equal(buffer.next_obs[:2, 10:12], buffer.obs[:2, 12:14])
  assert buffer.obs[:2, :22].max() > 0

  # What scripts.play plays (its command line is tested on CartPole): whole games.
  (total, length, frames), = dqn.greedy_episodes(
      config, jax.tree.map(lambda x: x[1], state.params),
      jax.tree.map(lambda x: x[1], state.env_state), 1, 0)
  assert total >= 0 and length == len(frames) == 30     # 120 frames of 4: the time limit
  assert render.frame(config.task_config.env, frames[-1]).size == (300, 300)


def test_atari_life_loss_terminates_training_and_the_time_limit_truncates():
  """Breakout with random play: the first lost life terminates (no bootstrap) while the game
  goes on; the time limit truncates, ends the game and keeps its real last frames."""
  t = dqn.default_task_config()
  t.env = 'ALE/Breakout-v5'
  env = environments.make(t)
  assert env.num_actions == 4 and env.obs_shape == (84, 84, 4)
  obs, env_state = env.reset(jax.random.PRNGKey(3), 2)
  step = jax.jit(env.step)
  actions = np.random.default_rng(0).integers(0, 4, (1000, 2)).astype(np.int32)
  for i, action in enumerate(actions):
    out = step(jax.random.PRNGKey(i), env_state, jnp.asarray(action))
    env_state = out.env_state
    if np.any(out.terminated):
      break
  assert np.any(out.terminated) and not np.any(out.done), i
  np.testing.assert_array_equal(out.final_obs, out.obs)   # the game went on: no reset
  for i, action in enumerate(actions[:1500]):        # on to the end of a whole game
    out = step(jax.random.PRNGKey(i), env_state, jnp.asarray(action))
    env_state = out.env_state
    if np.any(out.done):
      break
  assert np.all(out.terminated[out.done]) and not np.any(out.truncated), i
  # Evaluation's emulators end an episode at the game's end only, not at a lost life.
  obs, eval_state = env.eval_reset(jax.random.PRNGKey(5), 2, env_state)
  eval_step, lost = jax.jit(env.eval_step), 0
  for i, action in enumerate(actions[:1500]):
    out = eval_step(jax.random.PRNGKey(i), eval_state, jnp.asarray(action))
    eval_state = out.env_state
    lost += int(np.sum(out.terminated))
    if np.any(out.done):
      break
  assert np.any(out.done) and lost == int(np.sum(out.done)), (i, lost)

  t.atari.max_episode_frames = 40                    # 10 steps of 4 frames
  env = environments.make(t)
  obs, env_state = env.reset(jax.random.PRNGKey(4), 2)
  step = jax.jit(env.step)
  for i in range(10):
    out = step(jax.random.PRNGKey(i), env_state, jnp.zeros((2,), jnp.int32))
    previous, obs, env_state = obs, out.obs, out.env_state
    assert bool(np.all(out.truncated)) == (i == 9)
  assert np.all(out.done) and not np.any(out.terminated)
  assert not np.array_equal(out.final_obs, out.obs)     # the next game started
  np.testing.assert_array_equal(out.final_obs[..., :3], previous[..., 1:])


def test_the_nature_network_has_its_published_size():
  from projects.reinforcement import models  # pylint: disable=import-outside-toplevel
  shapes = jax.eval_shape(models.NatureQNetwork(num_outputs=4).init, jax.random.PRNGKey(0),
                          jnp.zeros((1, 84, 84, 4), jnp.uint8))
  assert sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes)) == 1_686_180
