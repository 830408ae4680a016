"""The final project: a Kaggle-style competition folder to a scored submission (projects/tabular).

  python -m scripts.competition --make=boston --folder=/tmp/boston
  python -m scripts.competition --config=configs/tabular/competition.py:boston \
      --folder=/tmp/boston --workdir=/tmp/boston_run

5 folds (shuffled, seed 0; stratified for classes) train as members of one run, each fitting
its own column preprocessing on its own training rows; the out-of-fold predictions are scored
with the competition's metric, the test predictions averaged over the folds make
submission.csv, scikit-learn's baselines run on the same folds, and a blend with gradient
boosting is fitted on the out-of-fold predictions. Not in the book (the course's final
project). Ours (2-core x86 CPU, JAX 0.10.2): boston RMSE 3.48 out of fold, 2.37 on test
(gradient boosting on the same folds 3.89 / 2.76); breast_cancer ROC AUC 0.991 / 0.998
(0.994 / 0.995); digits accuracy 0.936 / 0.967 (5 min); Digit Recognizer's tables
(--make=digit_recognizer) 0.956 / 0.965 (53 s); a made-up Titanic (--make=titanic_like,
:table) 0.742 / 0.730 (logistic regression 0.762 / 0.737); more in
projects/tabular/README.md.

Image-folder competitions (train/<class>/, test/, sample_submission.csv; projects/tabular/
images.py) go through the same script, with an image model taken from another config:
  python -m scripts.competition --make=digits --folder=/tmp/digits
  python -m scripts.competition --config=configs/tabular/competition.py:digits \
      --folder=/tmp/digits --workdir=/tmp/digits_run

Variants (one of the competitions, plus `smoke` for a few epochs):
  boston          MEDV (k$), RMSE: TabularNet 64-64, mse, adam 1e-3, batch 16, 300 epochs;
                  MEDV standardized on each fold's training rows (raw: 3.63 / 2.26);
                  CHAS and RAD declared categorical (integers are numbers otherwise: as
                  numbers, with the raw MEDV, RMSE 3.77 / 2.45 out of fold / test).
  breast_cancer   malignant (0/1), ROC AUC: TabularNet 32, dropout 0.2, binary_crossentropy,
                  adam 1e-3, batch 16, 60 epochs.
  digits          label (0-9), accuracy, images 28x28: book 5.1's convnet
                  (configs/convnets/mnist_convnet.py: rmsprop 1e-3, batch 64, 5 epochs),
                  sparse_categorical_crossentropy, 5 stratified folds. Also Kaggle's Digit
                  Recognizer as downloaded: train.csv's pixel0..pixel783 are the images
                  (28 x 28 x 1), test.csv's rows the test images in sample_submission.csv's
                  ImageId order.
  cats_dogs       Kaggle's Dogs vs. Cats Redux (--metric=log_loss, of the probability of a
                  dog; its ids are the test files' numbers) with book 5.3's frozen VGG16
                  (configs/transfer/cats_dogs_vgg16.py:frozen: the converted ImageNet
                  weights, augmentation, rmsprop 2e-5, batch 20, 30 epochs),
                  images 150x150, 5 stratified folds. Its folder as Kaggle ships it: one flat
                  train/ of cat.<n>.jpg and dog.<n>.jpg (the class is the name's prefix),
                  test/<n>.jpg, sample_submission.csv. Not run here (no network for the
                  weights or the images).
  table           any Kaggle table folder as downloaded (train.csv, test.csv and its sample
                  submission, whatever its name: Titanic's gender_submission.csv): the
                  target is the column test.csv lacks, the id the sample's first column
                  (or, where the tables have none, the sample's rows are the test rows in
                  order), the loss follows the target (two values: binary_crossentropy;
                  integers or strings with at most 50 values: classes; else mse) and the
                  metric the loss (accuracy or rmse) unless --metric names it; a regression's
                  target standardized per fold (log(1 + y) first for --metric=rmsle: House
                  Prices).
                  TabularNet 64-64, dropout 0.2, adam 1e-3, batch 32, 60 epochs, 5 folds.
For another competition folder, `table` fills in what the folder tells; name the rest
(task_config.table.target/id, task_config.loss, --metric) on the command line.
"""
import copy

from configs import variants
from configs.convnets import mnist_convnet
from configs.transfer import cats_dogs_vgg16
from library.config import default_config

VARIANTS = ('boston', 'breast_cancer', 'digits', 'cats_dogs', 'table', 'smoke')


def _image_model_of(config, source) -> None:
  """An image competition trained with another config's image model and recipe: its model,
  its start (model_init), optimizer, freezing, augmentation, loss, image size and scale,
  batch size and epochs."""
  for key in ('model', 'model_init', 'optimizer'):
    config[key] = copy.deepcopy(source[key])
  for key in ('image_size', 'scale', 'augment'):
    config.data[key] = copy.deepcopy(source.data[key])
  for key in ('freeze', 'unfreeze_from', 'metrics'):
    config.task_config[key] = copy.deepcopy(source.task_config[key])
  config.batch_size, config.num_epochs = source.batch_size, source.num_epochs
  config.steps_per_dispatch = copy.deepcopy(source.steps_per_dispatch)
  config.task_config.table.id = 'file'
  config.task_config.table.target = 'label'
  config.members.scheme = 'stratified_kfold'


def get_config(arg: str | None = None):
  chosen = variants.parse(arg, VARIANTS)
  which = variants.pick_one(chosen, ('boston', 'breast_cancer', 'digits', 'cats_dogs',
                                     'table'), 'boston')
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
  # A table's run takes seconds; an image model's minutes: its bar shows the steps, their rate
  # and the time left (tqdm's estimate).
  config.progress_bar = which in ('digits', 'cats_dogs')
  if which == 'boston':
    config.task_config.table.target = 'MEDV'
    # Integers are numbers unless declared: the river flag and the highway index are codes.
    config.task_config.table.categorical = ('CHAS', 'RAD')
    config.task_config.loss = 'mse'
    config.task_config.metrics = ('mae',)
    config.model.kwargs.hidden = (64, 64)
    config.num_epochs = 300.0
  elif which == 'digits':
    _image_model_of(config, mnist_convnet.get_config())
    config.data.image_size = (28, 28)
    config.task_config.loss = 'sparse_categorical_crossentropy'
    config.checkpoint.every_epochs = None
  elif which == 'cats_dogs':
    _image_model_of(config, cats_dogs_vgg16.get_config('frozen'))
    config.task_config.table.id = 'id'          # Kaggle's: the test file's number
    config.task_config.loss = 'binary_crossentropy'
    config.eval_batch_size = 96     # (VGG16's activations: a multiple of 8 devices)
    config.checkpoint.every_epochs = None
  elif which == 'table':      # any Kaggle table: what the folder tells, filled in
    config.task_config.table.target = ''
    config.task_config.table.id = ''
    config.task_config.loss = ''
    config.task_config.metrics = ()
    config.model.kwargs.hidden = (64, 64)
    config.model.kwargs.dropout_rate = 0.2
    config.batch_size = 32
    config.num_epochs = 60.0
  else:
    config.task_config.table.target = 'malignant'
    config.task_config.loss = 'binary_crossentropy'
    config.task_config.metrics = ('accuracy',)
    config.members.scheme = 'stratified_kfold'
    config.model.kwargs.hidden = (32,)
    config.model.kwargs.dropout_rate = 0.2
    config.num_epochs = 60.0
  # Ten evaluations a run, however many epochs --config.num_epochs asks for (a reference
  # to num_epochs, resolved when the config is read).
  config.eval_every_epochs = config.get_ref('num_epochs') / 10
  if which in ('digits', 'cats_dogs'):     # Keras' epochs, as the image configs evaluate
    config.eval_every_epochs = 1.0
  if 'smoke' in chosen:
    config.num_epochs = 4.0
    config.eval_every_epochs = 2.0
    config.checkpoint.every_epochs = 2.0
    if which == 'digits':
      config.num_epochs, config.eval_every_epochs = 1.0, 1.0
      config.checkpoint.every_epochs = None
      config.model.kwargs.features, config.model.kwargs.dense = (4, 8, 8), (8,)
  return config
