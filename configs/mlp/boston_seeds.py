"""The 3.6 final model trained with 10 seeds at once: how much of the test MAE is luck?

  python -m scripts.crossval --config=configs/mlp/boston_seeds.py:embedded --workdir=/tmp/seeds

members.scheme=seeds: the same data and protocol as configs/mlp/boston_final.py (80 epochs,
batch 16), seeds 0..9 for initialization and batch order, vmapped into one program;
results.json has each seed's test MAE and their mean and standard deviation.
Not in the book (it reports one seed). Ours (`embedded`): test MAE 2.17 +/- 0.13, 2.2 s for the
ten on a 2-core x86 CPU.
Variants as configs/mlp/boston_kfold.py.
"""
from configs.mlp import boston_final

VARIANTS = ('embedded', 'smoke')


def get_config(arg: str | None = None):
  config = boston_final.get_config(arg)
  config.members.scheme = 'seeds'
  config.members.k = 10
  config.steps_per_dispatch.cpu = 1000     # members: an evaluation interval per dispatch
  return config
