"""Configs of the two small tasks that are not supervised learning (tests/tasks/).

  python -m scripts.train --config=tests/tasks/configs.py:walkers --workdir=/tmp/walkers
  python -m scripts.train --config=tests/tasks/configs.py:two_players --workdir=/tmp/gan
"""
from configs import variants
from library.config import default_config

VARIANTS = ('walkers', 'two_players')


def get_config(arg: str | None = None):
  chosen = variants.parse(arg, VARIANTS)
  name = variants.pick_one(chosen, VARIANTS, 'walkers')
  config = default_config(f'tests.tasks.{name}')
  config.optimizer.name = 'adam'
  config.optimizer.learning_rate = 1e-2
  config.num_train_steps = 60
  config.eval_every_steps = 10
  config.steps_per_dispatch.cpu = 5
  config.progress_bar = False
  if name == 'two_players':
    config.batch_size = 64     # 512 real samples: 8 steps an epoch
    config.num_train_steps = 200
    config.eval_every_steps = 20
  return config
