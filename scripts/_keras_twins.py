"""The Keras side of the benchmarks: the book's models as Keras 3 builds them, and the book's
loops that train them (compile/fit/evaluate, a fold at a time, the GAN's train_on_batch), which
scripts/benchmark.py and scripts/benchmark_fullsize.py time beside ours. Each model function
takes the `keras` module (imported by the caller, after KERAS_BACKEND is set) and returns the
model (8.5: the generator, discriminator and GAN), uncompiled unless the book compiles it
inside."""
import itertools
import time

import numpy as np


def dense(keras):
  return keras.Sequential([keras.Input((784,)), keras.layers.Dense(512, activation='relu'),
                           keras.layers.Dense(10, activation='softmax')])


def convnet(keras):
  layers = keras.layers
  return keras.Sequential([
      keras.Input((28, 28, 1)),
      layers.Conv2D(32, 3, activation='relu'), layers.MaxPooling2D(2),
      layers.Conv2D(64, 3, activation='relu'), layers.MaxPooling2D(2),
      layers.Conv2D(64, 3, activation='relu'), layers.Flatten(),
      layers.Dense(64, activation='relu'), layers.Dense(10, activation='softmax')])


def boston(keras):
  return keras.Sequential([keras.Input((13,)), keras.layers.Dense(64, activation='relu'),
                           keras.layers.Dense(64, activation='relu'), keras.layers.Dense(1)])


def lstm(keras):
  layers = keras.layers
  return keras.Sequential([keras.Input((500,), dtype='int32'), layers.Embedding(10000, 32),
                           layers.LSTM(32), layers.Dense(1, activation='sigmoid')])


def vae(keras):
  """Book 8.4's VAE in Keras 3: the KL term through add_loss, the sampling from a SeedGenerator
  (sigma = exp(log_var / 2), as ours by default), pixel BCE as the compiled loss."""
  layers, ops = keras.layers, keras.ops

  class Sampling(layers.Layer):

    def __init__(self, **kwargs):
      super().__init__(**kwargs)
      self.seed = keras.random.SeedGenerator(0)

    def call(self, inputs):
      mean, log_var = inputs
      return mean + ops.exp(0.5 * log_var) * keras.random.normal(ops.shape(mean), seed=self.seed)

  class KLLoss(layers.Layer):

    def call(self, inputs):
      mean, log_var = inputs
      self.add_loss(-5e-4 * ops.mean(1 + log_var - ops.square(mean) - ops.exp(log_var)))
      return mean

  images = keras.Input((28, 28, 1))
  x = layers.Conv2D(32, 3, padding='same', activation='relu')(images)
  x = layers.Conv2D(64, 3, padding='same', activation='relu', strides=2)(x)
  x = layers.Conv2D(64, 3, padding='same', activation='relu')(x)
  x = layers.Conv2D(64, 3, padding='same', activation='relu')(x)
  x = layers.Dense(32, activation='relu')(layers.Flatten()(x))
  mean, log_var = layers.Dense(2)(x), layers.Dense(2)(x)
  z = Sampling()([KLLoss()([mean, log_var]), log_var])
  x = layers.Reshape((14, 14, 64))(layers.Dense(14 * 14 * 64, activation='relu')(z))
  x = layers.Conv2DTranspose(32, 3, padding='same', activation='relu', strides=2)(x)
  return keras.Model(images, layers.Conv2D(1, 3, padding='same', activation='sigmoid')(x))


def dcgan(keras):
  """Book 8.5's generator, discriminator and GAN model, compiled as the book does. Keras 3
  trains a model with the trainable flags of its compile(): the book's `discriminator.trainable
  = FALSE` after compiling the discriminator would then leave it untrained, so the step sets the
  flag around each update (gan_keras_step)."""
  layers = keras.layers
  leaky = lambda: layers.LeakyReLU(0.3)  # noqa: E731
  generator = keras.Sequential([
      keras.Input((32,)), layers.Dense(128 * 16 * 16), leaky(), layers.Reshape((16, 16, 128)),
      layers.Conv2D(256, 5, padding='same'), leaky(),
      layers.Conv2DTranspose(256, 4, strides=2, padding='same'), leaky(),
      layers.Conv2D(256, 5, padding='same'), leaky(),
      layers.Conv2D(256, 5, padding='same'), leaky(),
      layers.Conv2D(3, 7, padding='same', activation='tanh')])
  discriminator = keras.Sequential([
      keras.Input((32, 32, 3)), layers.Conv2D(128, 3), leaky(),
      *[x for _ in range(3) for x in (layers.Conv2D(128, 4, strides=2), leaky())],
      layers.Flatten(), layers.Dropout(0.4), layers.Dense(1, activation='sigmoid')])
  discriminator.compile(optimizer=keras.optimizers.RMSprop(8e-4, clipvalue=1.0),
                        loss='binary_crossentropy')
  discriminator.trainable = False
  z = keras.Input((32,))
  gan = keras.Model(z, discriminator(generator(z)))
  gan.compile(optimizer=keras.optimizers.RMSprop(4e-4, clipvalue=1.0), loss='binary_crossentropy')
  return generator, discriminator, gan


def gru(keras):
  return keras.Sequential([keras.Input((240, 14)),
                           keras.layers.GRU(32, reset_after=False),   # the book's GRU
                           keras.layers.Dense(1)])


def cats_dogs_aug(keras):
  """Book 5.2 with augmentation, as Keras 3 does it: its augmentation layers in the model
  (rotation 40 degrees, shifts, shear and zoom 0.2, horizontal flip, 'nearest' fill)."""
  layers = keras.layers
  fill = dict(fill_mode='nearest')
  return keras.Sequential([
      keras.Input((150, 150, 3)),
      layers.RandomRotation(40 / 360, **fill), layers.RandomTranslation(0.2, 0.2, **fill),
      layers.RandomShear(0.2, 0.2, **fill), layers.RandomZoom(0.2, **fill),
      layers.RandomFlip('horizontal'),
      layers.Conv2D(32, 3, activation='relu'), layers.MaxPooling2D(2),
      layers.Conv2D(64, 3, activation='relu'), layers.MaxPooling2D(2),
      layers.Conv2D(128, 3, activation='relu'), layers.MaxPooling2D(2),
      layers.Conv2D(128, 3, activation='relu'), layers.MaxPooling2D(2),
      layers.Flatten(), layers.Dropout(0.5),
      layers.Dense(512, activation='relu'), layers.Dense(1, activation='sigmoid')])


def imdb_dense(keras):
  """Book 3.4: 16 -> 16 -> 1 on multi-hot reviews of 10,000 words."""
  layers = keras.layers
  return keras.Sequential([keras.Input((10000,)), layers.Dense(16, activation='relu'),
                           layers.Dense(16, activation='relu'),
                           layers.Dense(1, activation='sigmoid')])


def reuters(keras):
  """Book 3.5: 64 -> 64 -> 46 on multi-hot newswires of 10,000 words."""
  layers = keras.layers
  return keras.Sequential([keras.Input((10000,)), layers.Dense(64, activation='relu'),
                           layers.Dense(64, activation='relu'),
                           layers.Dense(46, activation='softmax')])


def imdb_embedding(keras):
  """Book 6.1: embedding 8 of 10,000 words, reviews of 20 words, flatten -> 1."""
  layers = keras.layers
  return keras.Sequential([keras.Input((20,), dtype='int32'), layers.Embedding(10000, 8),
                           layers.Flatten(), layers.Dense(1, activation='sigmoid')])


def imdb_conv1d(keras):
  """Book 6.4: embedding 128 -> conv1d 32 k7 -> max pool 5 -> conv1d 32 k7 -> global max
  pool -> 1."""
  layers = keras.layers
  return keras.Sequential([
      keras.Input((500,), dtype='int32'), layers.Embedding(10000, 128),
      layers.Conv1D(32, 7, activation='relu'), layers.MaxPooling1D(5),
      layers.Conv1D(32, 7, activation='relu'), layers.GlobalMaxPooling1D(),
      layers.Dense(1, activation='sigmoid')])


def vgg16_head(keras):
  """Book 5.3, recipe 1: the classifier on VGG16's flattened 4 x 4 x 512 features."""
  layers = keras.layers
  return keras.Sequential([keras.Input((4 * 4 * 512,)), layers.Dense(256, activation='relu'),
                           layers.Dropout(0.5), layers.Dense(1, activation='sigmoid')])


def text_lstm(keras, maxlen: int, chars: int):
  """Book 8.1: LSTM 128 over one-hot windows -> softmax over the characters."""
  return keras.Sequential([keras.Input((maxlen, chars)), keras.layers.LSTM(128),
                           keras.layers.Dense(chars, activation='softmax')])


def fit_and_test(keras, model, config, splits: dict, epochs: int, loss: str, *,
                 smoke_steps: int = 0, with_validation: bool = False, compile_phases) -> dict:
  """compile, fit and evaluate on the splits ours trains on (a task without metrics, the VAE,
  reconstructs its inputs): examples per second after the first step, the first step's time,
  the test metric. `smoke_steps`: epochs of that many batches; `compile_phases(run, name)`
  records the first compilation's phases."""
  from library.data import pipeline  # pylint: disable=import-outside-toplevel
  metrics = list(config.task_config.get('metrics') or ())
  x = splits['train']['inputs']
  y = splits['train']['labels'] if metrics else x
  if smoke_steps:
    x, y = x[:smoke_steps * config.batch_size], y[:smoke_steps * config.batch_size]
  validation = {}
  if with_validation and 'validation' in splits:   # as ours evaluates it, each epoch
    v = splits['validation']
    validation['validation_data'] = (v['inputs'], v['labels'] if metrics else v['inputs'])
  model.compile(optimizer=keras.optimizers.RMSprop(config.optimizer.learning_rate),
                loss=loss, metrics=metrics)
  times = {}

  class Timer(keras.callbacks.Callback):

    def on_train_batch_end(self, batch, logs=None):
      if 'first' not in times:
        times['first'] = time.perf_counter()

  start = time.perf_counter()
  _, phases = compile_phases(lambda: model.fit(x, y, batch_size=config.batch_size,
                                               epochs=epochs, verbose=0, callbacks=[Timer()],
                                               **validation), 'train_step')
  end = time.perf_counter()
  fit_end_wall = time.time()
  steps = epochs * pipeline.steps_per_epoch(len(y), config.batch_size)
  test = splits['test']
  scores = model.evaluate(test['inputs'], test['labels'] if metrics else test['inputs'],
                          verbose=0)
  test_metric = scores[1] if metrics else scores
  return {'per_s': (steps - 1) * config.batch_size / (end - times['first']),
          'first_step_s': times['first'] - start, 'test_metric': float(test_metric),
          'steps': steps, 'keras_version': keras.__version__, 'fit_end_wall': fit_end_wall,
          'backend': keras.backend.backend(), 'np': np.__version__, **phases}


def crossval(keras, build, x, y, folds, learning_rates, epochs: int, batch_size: int) -> dict:
  """The book's k-fold loop: for each fold (and learning rate) build, compile, fit and
  evaluate, in turn, each fold standardized with its own training rows' statistics."""
  from library.data import preprocessing  # pylint: disable=import-outside-toplevel
  maes = []
  start = time.perf_counter()
  for (train_rows, val_rows), rate in itertools.product(folds, learning_rates):
    stats = preprocessing.fit_standardizer(x[train_rows])
    norm = lambda rows: (x[rows] - stats['mean']) / stats['std']  # noqa: E731
    model = build(keras)
    model.compile(optimizer=keras.optimizers.RMSprop(rate), loss='mse', metrics=['mae'])
    model.fit(norm(train_rows), y[train_rows], epochs=epochs, batch_size=batch_size, verbose=0)
    maes.append(float(model.evaluate(norm(val_rows), y[val_rows], verbose=0)[1]))
  return {'seconds': time.perf_counter() - start, 'val_mae': float(np.mean(maes)),
          'fold_val_mae': maes, 'keras_version': keras.__version__}


def gan_steps(keras, images, steps: int, batch: int = 20) -> dict:
  """The book's DCGAN loop (8.5): generator.predict, discriminator.train_on_batch on generated
  and real images with noisy labels, gan.train_on_batch towards "real"; iterations timed after
  the first."""
  generator, discriminator, gan = dcgan(keras)
  rng = np.random.default_rng(0)
  stamps = []
  start = time.perf_counter()
  for i in range(steps):
    real = images[(i * batch) % len(images):][:batch]
    fake = generator.predict(rng.normal(size=(batch, 32)).astype(np.float32), verbose=0)
    labels = np.concatenate([np.ones((batch, 1)), np.zeros((batch, 1))]) + 0.5 * rng.uniform(
        size=(2 * batch, 1))
    discriminator.trainable = True
    discriminator.train_on_batch(np.concatenate([fake, real]), labels)
    discriminator.trainable = False
    gan.train_on_batch(rng.normal(size=(batch, 32)).astype(np.float32), np.zeros((batch, 1)))
    stamps.append(time.perf_counter())
  return {'per_s': (steps - 1) * batch / (stamps[-1] - stamps[0]),
          'first_step_s': stamps[0] - start, 'keras_version': keras.__version__}
