"""Book 4.4, "Overfitting and underfitting": seven IMDB models, validated on the test reviews.

  python -m scripts.sweep --config=configs/mlp/imdb_overfit.py \
      --runs=original,smaller,bigger,l1,l2,l1_l2,dropout --workdir=/tmp/overfit
  python -m scripts.train --config=configs/mlp/imdb_overfit.py:l2 --workdir=/tmp/overfit_l2

As 3.4 (10,000-dim multi-hot, rmsprop, 20 epochs batch 512) with the test set as validation, as
the book does. original: 16-16-1; smaller: 4-4-1; bigger: 512-512-1; l1 / l2 / l1_l2: the
original with kernel regularizers 0.001 on both hidden layers (Keras' regularizer_l1(0.001),
regularizer_l2(0.001), regularizer_l1_l2(l1 = 0.001, l2 = 0.001)); dropout: 0.5 after each
hidden layer. scripts.sweep draws all validation-loss curves on one figure (curves.png).
Book: (plots only) original's validation loss is lowest (~0.28) near epoch 4; the bigger model
overfits fastest; L2 and dropout end near 0.44 and 0.56 (the original higher).
Ours: not run here (no network to fetch IMDB). Variants: one model name, plus `tfds` and
`smoke` as in configs/mlp/imdb_holdout.py.
"""
from configs import variants
from configs.mlp import imdb_holdout

MODELS = ('original', 'smaller', 'bigger', 'l1', 'l2', 'l1_l2', 'dropout')
# The two hidden Dense layers, not the output one (flax names them Dense_0, Dense_1, Dense_2).
HIDDEN_KERNELS = r'^Dense_[01]/kernel$'
VARIANTS = MODELS + imdb_holdout.VARIANTS


def get_config(arg: str | None = None):
  chosen = variants.parse(arg, VARIANTS)
  model = variants.pick_one(chosen, MODELS, 'original')
  config = imdb_holdout.imdb_base(chosen)
  config.data.test_as_validation = True
  config.model.kwargs.hidden = {'smaller': (4, 4), 'bigger': (512, 512)}.get(model, (16, 16))
  config.task_config.regularization.pattern = HIDDEN_KERNELS
  if model in ('l1', 'l1_l2'):
    config.task_config.regularization.l1 = 0.001
  if model in ('l2', 'l1_l2'):
    config.task_config.regularization.l2 = 0.001
  if model == 'dropout':
    config.model.kwargs.dropout_rate = 0.5
  return config
