"""The Nature DQN on an Atari game through gymnasium + ale-py (the ROMs ship with ale-py):
Breakout by default, any other with `--config.task_config.env=ALE/Pong-v5`.

  python -m scripts.train --config=configs/reinforcement/atari_dqn.py --workdir=/tmp/breakout

projects/reinforcement/dqn.py with the emulators on the host (environments.py's Atari: each
step of the compiled loop calls them back) and Nature-DQN's preprocessing from ALE itself:
grayscale 84x84, frame skip 4 with the max of the last two frames, a stack of 4, up to 30
no-ops at reset, a lost life terminates in training (the game goes on), rewards clipped to
[-1, 1] for learning (the logged returns are the game's score), -v5's sticky actions (0.25).
The network is the Nature DQN's (projects/reinforcement/models.py, 1.69M parameters). CleanRL's
dqn_atari settings otherwise: 4 environments a step with one update of 32 transitions (one
update per 4 environment steps), Adam 1e-4, Huber loss, gamma 0.99, the target copied every
250 steps (1,000 environment steps), epsilon 1 -> 0.01 over the first 10% of the run, learning
from step 20,000 (80,000 environment steps), 2.5M steps = 10M environment steps. The replay
holds 100,000 transitions, not CleanRL's 1M: each keeps both 84x84x4 stacks (56 KB), 5.6 GB
on the device. Each evaluation plays 10 whole games at epsilon 0.05.
Not in the book (its introduction names Deep Q on Atari). Ours: not measured yet. It is for a
GPU: on the 2-core x86 CPU here the 10M environment steps are days of work, and this task was
lent no GPU. The tests run `smoke`.
Variants: `double` Double DQN targets; `smoke` a few steps of a narrow network, two seeds.
"""
from configs import variants
from configs.reinforcement import cartpole_dqn

VARIANTS = ('double', 'smoke')


def get_config(arg: str | None = None):
  chosen = variants.parse(arg, VARIANTS)
  config = cartpole_dqn.get_config('one_seed,double' if 'double' in chosen else 'one_seed')
  config.model.module = 'projects.reinforcement.models'
  config.model.name = 'NatureQNetwork'
  config.model.kwargs = {'num_outputs': 4}
  config.optimizer.learning_rate = 1e-4
  config.optimizer.schedule = 'constant'
  t = config.task_config
  t.env = 'ALE/Breakout-v5'
  t.num_envs = 4
  t.buffer_size = 100_000
  t.batch_size = 32
  t.learning_starts = 20_000
  t.target_every = 250
  t.epsilon_end = 0.01
  t.epsilon_fraction = 0.1
  t.loss = 'huber'
  t.clip_rewards = True
  t.eval_episodes = 10
  t.eval_epsilon = 0.05
  config.num_train_steps = 2_500_000
  config.eval_every_steps = 250_000
  config.steps_per_dispatch.gpu = config.steps_per_dispatch.tpu = 1_000
  config.checkpoint.best_metric = 'validation.episode_return'
  config.checkpoint.best_mode = 'max'
  if 'smoke' in chosen:
    config.num_train_steps = 12
    config.eval_every_steps = 6
    config.steps_per_dispatch.cpu = 3
    t.learning_starts = 4
    t.buffer_size = 32
    t.batch_size = 4
    t.num_envs = 2
    t.eval_episodes = 2
    t.target_every = 3
    t.atari.max_episode_frames = 120      # 30 steps a game: evaluation ends quickly
    config.model.kwargs.features = (4, 4, 4)
    config.model.kwargs.dense = 16
    config.members.scheme = 'seeds'
    config.members.k = 2
    config.progress_bar = False
  return config
