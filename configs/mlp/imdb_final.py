"""Book 3.4, the final model: a fresh 16-16-1 network, 4 epochs on all 25,000 training reviews.

  python -m scripts.train --config=configs/mlp/imdb_final.py --workdir=/tmp/imdb_final

Book: test accuracy 0.8783 (printed). Ours: not run here (no network to fetch IMDB).
Variants as configs/mlp/imdb_holdout.py.
"""
from configs import variants
from configs.mlp import imdb_holdout

VARIANTS = imdb_holdout.VARIANTS


def get_config(arg: str | None = None):
  config = imdb_holdout.imdb_base(variants.parse(arg, VARIANTS))
  config.num_epochs = 4.0     # a smoke run's num_train_steps still wins
  return config
