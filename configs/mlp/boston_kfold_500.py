"""Book 3.6, the 500-epoch 4-fold run: where does validation MAE stop improving?

  python -m scripts.crossval --config=configs/mlp/boston_kfold_500.py:embedded --workdir=/tmp/k500

As configs/mlp/boston_kfold.py with 500 epochs. mean_validation.png is the book's figure: the
mean validation MAE per epoch over the folds, and its smoothed curve (EMA 0.9, first 10 epochs
left out); results.json's best_epoch_of_mean.mae is where the fold mean is lowest.
Book: improvement stops near epoch 70, then overfitting (the final model trains 80 epochs).
Ours (`embedded`): lowest fold-mean validation MAE at epoch 27, 3.03 at epoch 500;
4.7 s on a 2-core x86 CPU. projects/mlp/README.md has the table.
Variants as configs/mlp/boston_kfold.py.
"""
from configs import variants
from configs.mlp import boston_kfold

VARIANTS = ('embedded', 'smoke')


def get_config(arg: str | None = None):
  chosen = variants.parse(arg, VARIANTS)
  config = boston_kfold.get_config(arg)
  config.num_epochs = 2.0 if 'smoke' in chosen else 500.0
  config.checkpoint.every_epochs = 100.0    # 5 saves, as the 100-epoch run's 4
  return config
