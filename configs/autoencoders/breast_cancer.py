"""Anomaly detection on scikit-learn's breast-cancer table: an autoencoder trained on benign
tumours only scores malignant ones by reconstruction error.

  python -m scripts.anomaly --config=configs/autoencoders/breast_cancer.py --workdir=/tmp/bc

The 569 rows of 30 features (sklearn's `load_breast_cancer`: 357 benign, label 1; 212
malignant, label 0), 120 held out as test and 120 as validation (seed 0); features z-scored
with the training rows' statistics; the training split keeps its benign rows only. A dense
autoencoder 30 -> 16 -> 4 -> 16 -> 30 (mean squared error), Adam 1e-3, batch 16, 200 epochs.
Not in the book. Ours: see projects/autoencoders/README.md (2-core x86 CPU, JAX 0.10.2).
Variants: `smoke` a few steps.
"""
from configs import variants
from library.config import default_config

VARIANTS = ('smoke',)


def get_config(arg: str | None = None):
  chosen = variants.parse(arg, VARIANTS)
  config = default_config(task='projects.autoencoders.task')
  config.model.module = 'projects.autoencoders.models'
  config.model.name = 'DenseAutoencoder'
  config.model.kwargs = {'out_shape': (30,), 'hidden': (16,), 'code': 4}
  config.data.source = 'sklearn'
  config.data.name = 'breast_cancer'
  config.data.pool = 'all'
  config.data.test = 120
  config.data.validation = 120
  config.data.standardize = True
  config.task_config.loss = 'mse'
  config.task_config.normal_classes = (1,)
  config.optimizer.name = 'adam'
  config.optimizer.learning_rate = 1e-3
  config.batch_size = 16
  config.eval_batch_size = 120
  config.num_epochs = 200.0
  config.eval_every_epochs = 50.0
  if 'smoke' in chosen:
    variants.shrink_for_smoke(config)
    config.batch_size = 16
  return config
