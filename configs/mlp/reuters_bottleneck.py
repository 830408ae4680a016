"""Book 3.5, an information bottleneck: 64 -> 4 -> 46, 20 epochs batch 128, 1,000 held out.

  python -m scripts.train --config=configs/mlp/reuters_bottleneck.py --workdir=/tmp/bottleneck

A 4-unit layer cannot carry 46 topics. Book: validation accuracy peaks near 0.71 (text), about
8 points under the 64-64 model. Ours: not run here (no network to fetch Reuters).
Variants as configs/mlp/reuters_holdout.py.
"""
from configs import variants
from configs.mlp import reuters_holdout

VARIANTS = reuters_holdout.VARIANTS


def get_config(arg: str | None = None):
  chosen = variants.parse(arg, VARIANTS)
  config = reuters_holdout.reuters_base(chosen, hidden=(64, 4))
  config.batch_size = 32 if 'smoke' in chosen else 128
  config.data.validation = 8 if 'smoke' in chosen else 1000
  config.data.shuffle_holdout = False
  return config
