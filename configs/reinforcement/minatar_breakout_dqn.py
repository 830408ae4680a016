"""Deep Q-learning on gymnax's MinAtar Breakout (10x10x4 frames, 3 actions), environments and
replay on the device.

  python -m scripts.train --config=configs/reinforcement/minatar_breakout_dqn.py --workdir=/tmp/b

projects/reinforcement/dqn.py with MinAtar's own network (Young & Tian 2019): one 3x3
convolution of 16 filters (ReLU), a dense layer of 128, one Q-value per action
(projects/convnets' SmallConvnet). 16 environments a step, Adam 2.5e-4 falling to 0, a
100,000-transition replay, batch 64, target copied every 250 steps (4,000 environment steps),
epsilon 1 -> 0.01 over the first 10% of the run, Huber loss (the Nature DQN's), gamma 0.99,
50,000 steps = 800,000 environment steps. 8 seeds as members of one run, each keeping its best
evaluation (50 greedy episodes). Meant for a GPU: on the 2-core x86 CPU one seed runs 251 steps/s
(4,000 environment steps/s; CartPole's config: 2,680 steps/s), so the full 8-seed run would
take hours here (`--config.num_train_steps=3000 ...:one_seed`, `steps_per_second` in
results.json).
Not in the book (its introduction names Deep Q on Atari). Ours: not measured yet (the issue's
8-seed GPU run was not possible: this task was lent no GPU). The tests run `smoke`.
Variants: `double` Double DQN targets; `one_seed`; `smoke` a few steps.
"""
from configs import variants
from configs.reinforcement import cartpole_dqn

VARIANTS = ('double', 'one_seed', 'smoke')


def get_config(arg: str | None = None):
  chosen = variants.parse(arg, VARIANTS)
  config = cartpole_dqn.get_config(','.join(v for v in chosen if v in ('double', 'one_seed')))
  config.model.module = 'projects.convnets.models'
  config.model.name = 'SmallConvnet'
  config.model.kwargs = {'features': (16,), 'pool_after': (False,), 'dense': (128,),
                         'num_outputs': 3}
  t = config.task_config
  t.env = 'Breakout-MinAtar'
  t.num_envs = 16
  t.buffer_size = 100_000
  t.batch_size = 64
  t.learning_starts = 1_000
  t.target_every = 250
  t.epsilon_end = 0.01
  t.epsilon_fraction = 0.1
  t.loss = 'huber'
  t.eval_episodes = 50
  config.num_train_steps = 50_000
  config.eval_every_steps = 10_000
  if 'one_seed' not in chosen:
    config.members.k = 8
  if 'smoke' in chosen:
    config.num_train_steps = 20
    config.eval_every_steps = 10
    t.learning_starts = 5
    t.buffer_size = 64
    t.batch_size = 8
    t.num_envs = 2
    t.eval_episodes = 2
    t.target_every = 5
    config.members.k = 2 if 'one_seed' not in chosen else config.members.k
    config.model.kwargs.features = (4,)
    config.model.kwargs.dense = (8,)
    config.progress_bar = False
  return config
