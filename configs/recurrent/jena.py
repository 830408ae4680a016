"""Book 6.3 and 6.4: forecasting the temperature 24 hours ahead from 10 days of weather.

  python -m scripts.train --config=configs/recurrent/jena.py:gru --workdir=/tmp/jena_gru

The Jena climate CSV (420,551 rows, every 10 minutes, 14 numeric columns after 'Date Time'),
all columns z-scored with the training rows' statistics; a window is 10 days (lookback 1440
rows, one row an hour: step 6) and the target is the temperature (column 1) 24 hours later
(delay 144). Rows 0-200,000 train, 200,000-300,000 validate, the rest test (a window and its
target lie inside one split). MAE loss, rmsprop, batch 128; the book's 20 epochs of 500
random batches are 10,000 steps here (40 epochs: 20,000), with the full validation every 500.
results.json holds test.mae and test.baseline_mae (the last temperature as the forecast).
Models (projects/recurrent/models.py):
- dense: flatten -> 32 -> 1. gru: GRU 32. gru_dropout: GRU 32, dropout 0.2, recurrent dropout
  0.2 (40 epochs). stacked_gru: GRU 32 (dropout 0.1, recurrent 0.5) -> GRU 64 (0.1, 0.5), 40
  epochs. reversed_gru: GRU 32 reading the window backwards. bidirectional_gru: Bidirectional
  GRU 32, 40 epochs.
- conv1d (6.4): conv1d 32 k5 -> pool 3 -> conv1d 32 k5 -> pool 3 -> conv1d 32 k5 -> global max
  pool -> 1. conv_gru (6.4): step 3, lookback 720; conv1d 32 k5 -> pool 3 -> conv1d 32 k5 ->
  GRU 32 (dropout 0.1, recurrent 0.5) -> 1 (13,697 parameters).
Book: baseline MAE 0.29; dense ~0.3; GRU ~0.265; GRU with dropout ~0.252; stacked ~0.26;
reversed 0.45-0.49; conv-only in the 0.40s; conv + GRU ~0.265-0.27.
Ours: not run here (the Jena CSV cannot be downloaded on our machines; the tests run every
model on a synthetic CSV of the same layout). data.path's default, ~/jena_climate_2009_2016.csv,
is fetched on first use: https://s3.amazonaws.com/keras-datasets/jena_climate_2009_2016.csv.zip
(13.6 MB, no published hash: unverified) is kept in ~/.keras/datasets/ and the CSV unpacked
into ~ (python -m scripts.fetch --only jena_climate). Variants: a model name (default gru),
`smoke`.
"""
from configs import variants
from library.config import default_config

MODELS = ('dense', 'gru', 'gru_dropout', 'stacked_gru', 'reversed_gru', 'bidirectional_gru',
          'conv1d', 'conv_gru')
VARIANTS = MODELS + ('smoke',)


def get_config(arg: str | None = None):
  chosen = variants.parse(arg, VARIANTS)
  model = variants.pick_one(chosen, MODELS, 'gru')
  config = default_config()
  config.model.module = 'projects.recurrent.models'
  config.model.name = 'SequenceNet'
  k = config.model.kwargs
  epochs = 20
  if model == 'dense':
    k.flatten = True
    k.hidden = (32,)
  elif model in ('conv1d', 'conv_gru'):
    k.conv = ((32, 5),) * (3 if model == 'conv1d' else 2)
    k.pool_size = 3
    k.global_pool = model == 'conv1d'
    if model == 'conv_gru':
      k.rnn, k.units, k.dropout, k.recurrent_dropout = 'gru', (32,), 0.1, 0.5
  else:
    k.rnn = 'gru'
    k.units = (32, 64) if model == 'stacked_gru' else (32,)
    if model == 'gru_dropout':
      k.dropout, k.recurrent_dropout, epochs = 0.2, 0.2, 40
    if model == 'stacked_gru':
      k.dropout, k.recurrent_dropout, epochs = 0.1, 0.5, 40
    k.go_backwards = model == 'reversed_gru'
    if model == 'bidirectional_gru':
      k.bidirectional, epochs = True, 40
  k.num_outputs = 1
  config.task_config.loss = 'mae'
  config.task_config.metrics = ('mae',)
  config.data.source = 'csv'
  config.data.path = '~/jena_climate_2009_2016.csv'
  config.data.drop_columns = ('Date Time',)
  w = config.data.window
  w.lookback, w.step, w.delay, w.target = 1440, 6, 144, 1
  if model == 'conv_gru':
    w.lookback, w.step = 720, 3
  w.train_end, w.val_end = 200000, 300000
  config.optimizer.name = 'rmsprop'
  config.optimizer.learning_rate = 1e-3
  config.batch_size = 128
  config.eval_batch_size = 1024
  config.num_train_steps = 500 * epochs
  config.eval_every_steps = 500
  config.checkpoint.best_metric = 'validation.mae'
  config.checkpoint.best_mode = 'min'
  # GRU on 240 x 14 windows, 2-core CPU, examples/s (Keras 3: 1,901): 1 step per dispatch
  # 2,148-2,366; 2: 2,305; 4: 2,301; 8: 2,579-2,841 (medians of 3: 2,579). With 8: the input
  # projection hoisted out of the time scan 1,804; the time scan unrolled 2: 2,526; the GRU's
  # z and r recurrent matmuls fused into one: 2,205. Commands:
  #   python -m scripts.benchmark --only jena_gru --steps_per_dispatch 1,2,4,8 --no_keras
  #   python -m scripts.benchmark --only jena_gru --set model.kwargs.hoist_input=true
  # The hand-written backward pass (library/recurrent_fused.py), 1 / 4 per dispatch: 1,686 /
  # 2,042 against autodiff's 2,005 / 2,131 in the same hour:
  #   python -m scripts.benchmark --only jena_gru --steps_per_dispatch 1,4 --no_keras \
  #     --set model.kwargs.backward=fused
  config.steps_per_dispatch.cpu = 8
  if 'smoke' in chosen:
    variants.shrink_for_smoke(config)
    w.lookback, w.step, w.delay = {'conv_gru': (60, 3, 6), 'conv1d': (120, 1, 12)}.get(
        model, (120, 6, 12))
    w.train_end, w.val_end = 0.6, 0.8
  return config
