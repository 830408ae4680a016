"""Bootstrap validation of the 3.6 model: 20 resamples, each validated on its out-of-bag rows.

  python -m scripts.crossval --config=configs/mlp/boston_bootstrap.py:embedded --workdir=/tmp/boot

Each round trains on 404 rows drawn with replacement from the 404 training rows (about 63% of
them distinct) and is validated on the rows never drawn (about 149); the final model's protocol
(80 epochs, batch 16). Out-of-bag sets differ in size: the rounds are padded and masked.
Not in the book (the course's validation lecture). Ours (`embedded`): out-of-bag MAE
2.75 +/- 0.31, 2.8 s for the 20 rounds on a 2-core x86 CPU (first run).
Variants as configs/mlp/boston_kfold.py.
"""
from configs import variants
from configs.mlp import boston_kfold

VARIANTS = ('embedded', 'smoke')


def get_config(arg: str | None = None):
  chosen = variants.parse(arg, VARIANTS)
  config = boston_kfold.get_config(arg)
  config.members.scheme = 'bootstrap'
  config.members.k = 3 if 'smoke' in chosen else 20
  config.batch_size = 16
  config.num_epochs = 2.0 if 'smoke' in chosen else 80.0
  return config
