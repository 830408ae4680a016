"""Book 3.5, the final model: a fresh 64-64-46 network, 9 epochs on all 8,982 training newswires.

  python -m scripts.train --config=configs/mlp/reuters_final.py --workdir=/tmp/reuters_final

Book: test accuracy 0.7765 (printed; a random classifier: 0.189). Ours: not run here (no
network to fetch Reuters). Variants as configs/mlp/reuters_holdout.py.
"""
from configs import variants
from configs.mlp import reuters_holdout

VARIANTS = reuters_holdout.VARIANTS


def get_config(arg: str | None = None):
  config = reuters_holdout.reuters_base(variants.parse(arg, VARIANTS))
  config.num_epochs = 9.0     # a smoke run's num_train_steps still wins
  return config
