"""Book 3.6, the final model: 64-64-1 trained 80 epochs with batch 16 on all training rows.

  python -m scripts.train --config=configs/mlp/boston_final.py:embedded --workdir=/tmp/boston

Features z-scored with the training rows' statistics (saved as preprocessing.npz, reused by
scripts.evaluate and scripts.predict); results.json holds test.mae.
Book: test MAE 2.68 (k$, printed). Ours (`embedded`): test MAE 2.40 in 2.8 s of training on a
2-core x86 CPU (seed 0; over 10 seeds 2.17 +/- 0.13: configs/mlp/boston_seeds.py).
With `early_stopping` (book 7.2.1): 101 of the 404 training rows validate, EarlyStopping on
validation.mae (patience 20, the best weights restored) and ReduceLROnPlateau (factor 0.5,
patience 10) over up to 200 epochs, evaluated every epoch. Ours: stopped in epoch 90 with the
weights of epoch 70 (2 rate reductions): test MAE 2.82, against 2.83 for 80 epochs without
callbacks on the same 303/101/102 split (--config.callbacks.early_stopping.monitor=
--config.callbacks.reduce_lr.monitor= --config.num_epochs=80): no gain here; 4.8 s.
Variants as configs/mlp/boston_kfold.py, and `early_stopping`.
"""
from configs import variants
from configs.mlp import boston_kfold

VARIANTS = ('embedded', 'early_stopping', 'smoke')


def get_config(arg: str | None = None):
  chosen = variants.parse(arg, VARIANTS)
  config = boston_kfold.get_config(','.join(sorted(chosen - {'early_stopping'})))
  config.members.scheme = ''
  config.steps_per_dispatch.cpu = 1        # one model: as measured before members existed
  config.checkpoint.every_epochs = None
  config.batch_size = 16
  config.num_epochs = 80.0
  config.eval_every_epochs = 10.0
  if 'early_stopping' in chosen:
    config.data.validation = 101
    config.num_epochs = 200.0
    config.eval_every_epochs = 1.0
    config.checkpoint.every_epochs = 50.0
    variants.use_early_stopping(config, 'validation.mae', 20, reduce_lr_patience=10)
  if 'smoke' in chosen:
    config.num_epochs = 2.0
    config.eval_every_epochs = 1.0
  return config
