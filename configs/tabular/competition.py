"""The final project: a Kaggle-style competition folder to a scored submission (projects/tabular).

  python -m scripts.competition --make=boston --folder=/tmp/boston
  python -m scripts.competition --config=configs/tabular/competition.py:boston \
      --folder=/tmp/boston --workdir=/tmp/boston_run

5 folds (shuffled, seed 0; stratified for classes) train as members of one run, each fitting
its own column preprocessing on its own training rows; the out-of-fold predictions are scored
with the competition's metric, the test predictions averaged over the folds make
submission.csv, scikit-learn's baselines run on the same folds, and a blend with gradient
boosting is fitted on the out-of-fold predictions. Not in the book (the course's final
project). Ours (2-core x86 CPU, JAX 0.10.2): boston RMSE 3.63 out of fold, 2.26 on test
(gradient boosting on the same folds 3.89 / 2.76); breast_cancer ROC AUC 0.991 / 0.998
(0.994 / 0.995); more in projects/tabular/README.md.

Variants (one of the competitions, plus `smoke` for a few epochs):
  boston          MEDV (k$), RMSE: TabularNet 64-64, mse, adam 1e-3, batch 16, 300 epochs.
  breast_cancer   malignant (0/1), ROC AUC: TabularNet 32, dropout 0.2, binary_crossentropy,
                  adam 1e-3, batch 16, 60 epochs.
For another competition folder, copy a variant and name its target and id columns
(task_config.table), its loss, and its metric (competition.json's, or --metric).
"""
from configs import variants
from library.config import default_config

VARIANTS = ('boston', 'breast_cancer', 'smoke')


def get_config(arg: str | None = None):
  chosen = variants.parse(arg, VARIANTS)
  which = variants.pick_one(chosen, ('boston', 'breast_cancer'), 'boston')
  config = default_config('projects.tabular.task')
  config.model.module = 'projects.tabular.models'
  config.model.name = 'TabularNet'
  config.model.kwargs.num_outputs = 1
  config.data.source = 'csv'
  config.data.path = f'/tmp/{which}'
  config.task_config.table.id = 'id'
  config.optimizer.name = 'adam'
  config.optimizer.learning_rate = 1e-3
  config.batch_size = 16
  config.eval_batch_size = 512
  config.members.scheme = 'kfold'
  config.members.k = 5
  config.members.shuffle = True
  config.steps_per_dispatch.cpu = 1000
  config.checkpoint.every_epochs = 100.0
  config.progress_bar = False
  if which == 'boston':
    config.task_config.table.target = 'MEDV'
    config.task_config.loss = 'mse'
    config.task_config.metrics = ('mae',)
    config.model.kwargs.hidden = (64, 64)
    config.num_epochs = 300.0
  else:
    config.task_config.table.target = 'malignant'
    config.task_config.loss = 'binary_crossentropy'
    config.task_config.metrics = ('accuracy',)
    config.members.scheme = 'stratified_kfold'
    config.model.kwargs.hidden = (32,)
    config.model.kwargs.dropout_rate = 0.2
    config.num_epochs = 60.0
  config.eval_every_epochs = config.num_epochs / 10
  if 'smoke' in chosen:
    config.num_epochs = 4.0
    config.eval_every_epochs = 2.0
    config.checkpoint.every_epochs = 2.0
  return config
