"""Deep Q-learning on gymnax's CartPole-v1, environment and replay on the device, three seeds
as members of one run.

  python -m scripts.train --config=configs/reinforcement/cartpole_dqn.py --workdir=/tmp/dqn

projects/reinforcement/dqn.py: a 4 -> 120 -> 84 -> 2 Q-network (CleanRL's), 10 environments
stepped together, one Adam update of 128 transitions per loop step (2.5e-4, falling linearly to
0), a 10,000-transition
replay, the target network copied every 50 steps (500 environment steps), epsilon from 1 to 0.05
over half the run, squared TD error (Huber diverged here: see the README), gamma 0.99. Seeds 0, 1, 2 are members of one program
(members.scheme=seeds, k=3). Each evaluation (every 10,000 steps) plays 100 greedy episodes per
seed, and each seed ends with the parameters of its best evaluation (members.keep_best).
Not in the book: its introduction names Google's Deep Q algorithm but has no notebook for it.
Goal (the issue): a mean return >= 475 over 100 episodes for every seed, under 60 s for all of
them on a 2-core CPU. Ours: see projects/reinforcement/README.md for the returns and times
measured (2-core x86 CPU, JAX 0.10.2).
Variants: `double` Double DQN targets; `polyak` tau 0.005 every step; `one_seed`; `smoke` a few
steps.
"""
from configs import variants
from library.config import default_config

VARIANTS = ('double', 'polyak', 'one_seed', 'smoke')


def get_config(arg: str | None = None):
  chosen = variants.parse(arg, VARIANTS)
  config = default_config(task='projects.reinforcement.dqn')
  config.model.module = 'projects.mlp.models'
  config.model.name = 'MLP'
  config.model.kwargs = {'hidden': (120, 84), 'num_outputs': 2}
  config.optimizer.name = 'adam'
  config.optimizer.learning_rate = 2.5e-4
  config.optimizer.schedule = 'linear'        # to 0 at the end: the last policy stays good
  config.optimizer.end_value = 0.0
  config.num_train_steps = 50_000
  config.eval_every_steps = 10_000
  config.steps_per_dispatch.cpu = 1_000
  config.members.scheme = 'seeds'
  config.members.k = 3
  # Each seed ends with the parameters of its best evaluation (100 greedy episodes).
  config.members.keep_best = True
  config.checkpoint.best_metric = 'validation.episode_return'
  config.checkpoint.best_mode = 'max'
  if 'double' in chosen:
    config.task_config.double = True
  if 'polyak' in chosen:
    config.task_config.tau = 0.005
    config.task_config.target_every = 1
  if 'one_seed' in chosen:
    config.members.scheme = ''
    config.members.keep_best = False
  if 'smoke' in chosen:
    config.num_train_steps = 40
    config.eval_every_steps = 20
    config.task_config.learning_starts = 10
    config.task_config.buffer_size = 64
    config.task_config.batch_size = 8
    config.task_config.num_envs = 2
    config.task_config.eval_episodes = 2
    config.task_config.target_every = 5
    config.model.kwargs.hidden = (8,)
    config.progress_bar = False
  return config
