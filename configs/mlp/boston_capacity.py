"""Bias-variance on real data: the 3.6 network's width swept from 1 to 512 units, 4-fold each.

  python -m scripts.sweep --config=configs/mlp/boston_capacity.py --common=embedded --capacity \
      --runs=width=1,width=2,width=4,width=8,width=32,width=128,width=512 --metric=mae \
      --workdir=/tmp/capacity

Two hidden layers of `width` units, trained long (300 epochs, batch 16) on a quarter of the
training rows (101; the other 303 validate) so that big networks can memorize them; every width
trains 4 seeds as one program (members.scheme=seeds; seed means are reported).
capacity.png: final training and validation MAE against the parameter count - the U-shaped
curve of the course's "underfitting and overfitting" slide. Not in the book.
Ours: best validation MAE 3.02 at width 32,
rising to 3.34 at 512 while training MAE falls to ~0.5 (table in projects/mlp/README.md).
Variants: `width=N` (default 64), plus those of configs/mlp/boston_kfold.py.
"""
from configs import variants
from configs.mlp import boston_kfold

VARIANTS = ('embedded', 'smoke', 'width=8')


def get_config(arg: str | None = None):
  tokens = [t.strip() for t in (arg or '').split(',') if t.strip()]
  widths = [t for t in tokens if t.startswith('width=')]
  rest = ','.join(t for t in tokens if not t.startswith('width='))
  chosen = variants.parse(rest, boston_kfold.VARIANTS)
  try:
    width = int(widths[-1][len('width='):]) if widths else 64
  except ValueError:
    raise variants.UserError(f'{widths[-1]!r}: the width must be a whole number') from None
  if width < 1:
    raise variants.UserError(f'width={width} must be >= 1')
  config = boston_kfold.get_config(rest)
  config.model.kwargs.hidden = (width, width)
  config.batch_size = 16
  config.num_epochs = 2.0 if 'smoke' in chosen else 300.0
  config.data.validation = 303
  config.members.scheme = 'seeds'
  config.members.k = 4
  return config
