"""The book's configs at the book's full size, ours beside Keras 3 reading the same files.

  python -m scripts.benchmark_fullsize --root=/tmp/standins                 # every entry
  python -m scripts.benchmark_fullsize --root=/tmp/standins --only 3.4 --only 6.3
  python -m scripts.benchmark_fullsize --root=/tmp/small --smoke --only 2.1  # the machinery

--root is a home directory of stand-ins (scripts/make_standins.py: the real formats at the real
sizes, made here first when missing). Each side runs in a fresh process with HOME=ROOT, so both
read the files where a user's first use puts them:
  - ours: `python -m scripts.train`'s work on the config a user names (its data path defaults,
    its validation and test evaluation, its checkpoint), for one epoch or the stated steps;
  - Keras 3 (JAX backend): the book's way, in the same process layout: keras.datasets.*.
    load_data() and the book's vectorize_sequences / to_categorical / pad_sequences, the Jena
    lines parsed as Keras' example does and windowed by timeseries_dataset_from_array, the
    photos read by image_dataset_from_directory, 5.3's features by conv_base.predict, 8.1's
    one-hot windows built in Python loops; the same model, optimizer, batch size and steps,
    the same validation data where ours validates, the test set evaluated where ours has one.
Columns (each side): `load_s` from the start of the run (imports done) to the first step's
start: reading, preprocessing (5.3: the feature extraction), building the model; `first_s`
the first step, compilation included; `step_s` the mean of the later steps (ours: evaluation
and checkpoints excluded; Keras: first to last batch end, each batch's loss read);
`wait_s` the whole process, Python's start to exit, as the user waits; `peak_mb` the process's
peak resident memory (VmHWM; on a CPU the "device" arrays are in it). Medians over
--repeats, sides alternating. The stand-ins are not the published files, so Keras' hash check
of a cached file is skipped (ours checks a hash only when it downloads). 5.3's VGG16 base has
random weights, written once as Keras' .h5 and converted into ours (outside the timing).
Writes --output (JSON rows) and prints the Markdown table the README carries.
"""
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault('KERAS_BACKEND', 'jax')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from absl import flags  # pylint: disable=wrong-import-position

from library import cli  # pylint: disable=wrong-import-position
from library.errors import UserError  # pylint: disable=wrong-import-position
from scripts import _keras_twins as twins  # pylint: disable=wrong-import-position
from scripts import make_standins  # pylint: disable=wrong-import-position

_ROOT = flags.DEFINE_string('root', None, 'the stand-ins, laid out as a home directory '
                            '(written here first by scripts.make_standins where missing)')
_ONLY = flags.DEFINE_multi_string('only', None, 'book sections to run (default: all)')
_REPEATS = flags.DEFINE_integer('repeats', 1, 'processes per side; medians are reported')
_OUTPUT = flags.DEFINE_string('output', 'benchmark_fullsize.json', 'where the rows go')
_NO_KERAS = flags.DEFINE_bool('no_keras', False, 'measure ours only')
_SMOKE = flags.DEFINE_bool('smoke', False, f'stand-ins at scale {0.01} (written here when '
                           f'missing) and {2} steps a side: the machinery only')
_CHILD = flags.DEFINE_string('child', None, '(internal) one timed process: side:section:steps')

SMOKE_SCALE, SMOKE_STEPS = 0.01, 2
VGG16_NOTOP = 'vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5'   # Keras' file name


@dataclasses.dataclass(frozen=True)
class Entry:
  config: str                 # ours: config[:variant], as a user names it
  standins: tuple[str, ...]   # scripts.make_standins datasets it reads
  steps: int | None           # None: one epoch; else this many training steps a side
  keras: str                  # the Keras side's function in this module


ENTRIES = {
    '2.1': Entry('configs/mlp/mnist_dense.py', ('mnist',), None, 'keras_mnist_dense'),
    '3.4': Entry('configs/mlp/imdb_final.py', ('imdb',), None, 'keras_imdb_dense'),
    '3.5': Entry('configs/mlp/reuters_final.py', ('reuters',), None, 'keras_reuters'),
    '5.1': Entry('configs/convnets/mnist_convnet.py', ('mnist',), None, 'keras_mnist_convnet'),
    '5.2': Entry('configs/convnets/cats_dogs_small.py:augment', ('cats_dogs',), None,
                 'keras_cats_dogs'),
    '5.3': Entry('configs/transfer/cats_dogs_vgg16.py:features', ('cats_dogs',), None,
                 'keras_vgg16_features'),
    '6.1': Entry('configs/recurrent/imdb_sequences.py:embedding', ('imdb',), None,
                 'keras_imdb_embedding'),
    '6.2': Entry('configs/recurrent/imdb_sequences.py:lstm', ('imdb',), 40, 'keras_imdb_lstm'),
    '6.3': Entry('configs/recurrent/jena.py:gru', ('jena',), 100, 'keras_jena_gru'),
    '6.4': Entry('configs/recurrent/imdb_sequences.py:conv1d', ('imdb',), 40,
                 'keras_imdb_conv1d'),
    '8.1': Entry('configs/generative/text_lstm.py', ('nietzsche',), 100, 'keras_text_lstm'),
    '8.4': Entry('configs/generative/mnist_vae.py', ('mnist',), 500, 'keras_vae'),
}


# ---- The Keras side, the book's way. Each returns a Job: the model and what fit() gets. ----

@dataclasses.dataclass
class Job:
  model: object
  loss: str
  learning_rate: float
  batch_size: int
  train: object                     # (x, y) arrays, or a tf.data dataset of batches
  validation: object = None         # (x, y), a dataset, or a float: validation_split
  test: object = None               # (x, y) or a dataset
  metrics: tuple = ('accuracy',)


def _vectorize(sequences, dimension=10000):
  """The book's vectorize_sequences: a float64 matrix of zeros, ones where the words are."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  results = np.zeros((len(sequences), dimension))
  for i, sequence in enumerate(sequences):
    results[i, sequence] = 1.
  return results


def _mnist(keras, shape):
  (x, y), (x_test, y_test) = keras.datasets.mnist.load_data()
  prep = lambda a: a.reshape((len(a), *shape)).astype('float32') / 255  # noqa: E731
  return prep(x), y, prep(x_test), y_test


def keras_mnist_dense(keras):
  x, y, xt, yt = _mnist(keras, (784,))
  cat = keras.utils.to_categorical
  return Job(twins.dense(keras), 'categorical_crossentropy', 1e-3, 128, (x, cat(y)),
             test=(xt, cat(yt)))


def keras_mnist_convnet(keras):
  x, y, xt, yt = _mnist(keras, (28, 28, 1))
  cat = keras.utils.to_categorical
  return Job(twins.convnet(keras), 'categorical_crossentropy', 1e-3, 64, (x, cat(y)),
             test=(xt, cat(yt)))


def keras_vae(keras):
  x, _, xt, _ = _mnist(keras, (28, 28, 1))
  return Job(twins.vae(keras), 'binary_crossentropy', 1e-3, 16, (x, x), test=(xt, xt),
             metrics=())


def keras_imdb_dense(keras):
  import numpy as np  # pylint: disable=import-outside-toplevel
  (x, y), (xt, yt) = keras.datasets.imdb.load_data(num_words=10000)
  return Job(twins.imdb_dense(keras), 'binary_crossentropy', 1e-3, 512,
             (_vectorize(x), np.asarray(y).astype('float32')),
             test=(_vectorize(xt), np.asarray(yt).astype('float32')))


def keras_reuters(keras):
  (x, y), (xt, yt) = keras.datasets.reuters.load_data(num_words=10000)
  cat = keras.utils.to_categorical
  return Job(twins.reuters(keras), 'categorical_crossentropy', 1e-3, 512,
             (_vectorize(x), cat(y, 46)), test=(_vectorize(xt), cat(yt, 46)))


def _imdb_padded(keras, maxlen):
  (x, y), (xt, yt) = keras.datasets.imdb.load_data(num_words=10000)
  pad = keras.utils.pad_sequences
  return (pad(x, maxlen=maxlen), y), (pad(xt, maxlen=maxlen), yt)


def keras_imdb_embedding(keras):
  train, test = _imdb_padded(keras, 20)
  return Job(twins.imdb_embedding(keras), 'binary_crossentropy', 1e-3, 32, train, 0.2, test)


def keras_imdb_lstm(keras):
  train, test = _imdb_padded(keras, 500)
  return Job(twins.lstm(keras), 'binary_crossentropy', 1e-3, 128, train, 0.2, test)


def keras_imdb_conv1d(keras):
  train, test = _imdb_padded(keras, 500)
  return Job(twins.imdb_conv1d(keras), 'binary_crossentropy', 1e-4, 128, train, 0.2, test)


def _photos(keras, split, batch_size, shuffle=True):
  return keras.utils.image_dataset_from_directory(
      os.path.expanduser(f'~/cats_and_dogs_small/{split}'), image_size=(150, 150),
      batch_size=batch_size, label_mode='binary', shuffle=shuffle, seed=0, verbose=False)


def keras_cats_dogs(keras):
  model = keras.Sequential([keras.layers.Rescaling(1 / 255), twins.cats_dogs_aug(keras)])
  return Job(model, 'binary_crossentropy', 1e-4, 32, _photos(keras, 'train', 32),
             _photos(keras, 'validation', 32), _photos(keras, 'test', 32))


def keras_vgg16_features(keras):
  """The book's extract_features: the base's predictions over each folder, batch 20, /255."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  base = keras.applications.VGG16(weights=os.path.expanduser(f'~/.keras/models/{VGG16_NOTOP}'),
                                  include_top=False, input_shape=(150, 150, 3))
  out = {}
  for split in ('train', 'validation', 'test'):
    photos = _photos(keras, split, 20, shuffle=False)
    labels = np.concatenate([y for _, y in photos.as_numpy_iterator()])
    features = base.predict(photos.map(lambda x, y: x / 255), verbose=0)
    out[split] = (features.reshape(len(features), -1), labels)
  return Job(twins.vgg16_head(keras), 'binary_crossentropy', 2e-5, 20, out['train'],
             out['validation'], out['test'])


def keras_jena_gru(keras):
  """Keras' own Jena example (the book's 6.3 in Keras 3): the lines parsed in Python, z-scored
  with the first 200,000 rows' statistics, windows of 240 hourly rows, the temperature 24 h
  after the window's end, by timeseries_dataset_from_array."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  with open(os.path.expanduser('~/jena_climate_2009_2016.csv')) as f:
    lines = f.read().split('\n')[1:]
  raw = np.zeros((len(lines), 14), dtype='float32')
  for i, line in enumerate(l for l in lines if l):
    raw[i] = [float(x) for x in line.split(',')[1:]]
  raw = raw[:i + 1]
  mean, std = raw[:200000].mean(axis=0), raw[:200000].std(axis=0)
  raw = (raw - mean) / std
  rate, length = 6, 240
  delay = rate * (length + 24 - 1)

  def windows(start, end=None):
    return keras.utils.timeseries_dataset_from_array(
        raw[:-delay], targets=raw[delay:, 1], sampling_rate=rate, sequence_length=length,
        shuffle=True, seed=0, batch_size=128, start_index=start, end_index=end)

  return Job(twins.gru(keras), 'mae', 1e-3, 128, windows(0, 200000), windows(200000, 300000),
             windows(300000), metrics=('mae',))


def keras_text_lstm(keras):
  """Book 8.1: windows of 60 characters every 3, one-hot in Python loops, LSTM 128."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  with open(os.path.expanduser('~/.keras/datasets/nietzsche.txt'), encoding='utf-8') as f:
    text = f.read().lower()
  maxlen, step = 60, 3
  sentences = [text[i:i + maxlen] for i in range(0, len(text) - maxlen, step)]
  next_chars = [text[i + maxlen] for i in range(0, len(text) - maxlen, step)]
  chars = sorted(set(text))
  index = {c: i for i, c in enumerate(chars)}
  x = np.zeros((len(sentences), maxlen, len(chars)), dtype=bool)
  y = np.zeros((len(sentences), len(chars)), dtype=bool)
  for i, sentence in enumerate(sentences):
    for t, char in enumerate(sentence):
      x[i, t, index[char]] = 1
    y[i, index[next_chars[i]]] = 1
  return Job(twins.text_lstm(keras, maxlen, len(chars)), 'categorical_crossentropy', 1e-2, 128,
             (x, y), metrics=())


# ---- One timed process a side ----

def _peak_mb() -> float:
  """This process's peak resident memory: Linux's VmHWM (ru_maxrss would carry the parent's
  peak over the exec that started this process); elsewhere ru_maxrss."""
  try:
    with open('/proc/self/status') as f:
      for line in f:
        if line.startswith('VmHWM:'):
          return int(line.split()[1]) / 1024        # kB
  except OSError:
    pass
  scale = 1024 * 1024 if sys.platform == 'darwin' else 1024      # bytes on macOS, KiB on Linux
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def run_ours(section: str, steps: int | None) -> dict:
  import contextlib, io  # pylint: disable=import-outside-toplevel,multiple-imports
  from library import train  # pylint: disable=import-outside-toplevel
  path, _, variant = ENTRIES[section].config.partition(':')
  config = cli.config_module(path, 'fullsize_config').get_config(variant or None)
  config.num_train_steps = steps
  if steps is None:
    config.num_epochs = 1.0
  config.progress_bar = False
  config.compilation_cache_dir = ''      # a cold compile, as Keras gets
  with tempfile.TemporaryDirectory() as workdir, contextlib.redirect_stdout(io.StringIO()):
    results = train.train_and_evaluate(config, workdir)
  if 'examples_per_second' in results:
    step_s = config.batch_size / results['examples_per_second']
  else:
    step_s = 1 / results.get('steps_per_second', float('nan'))
  return {'load_s': results['setup_seconds'], 'first_s': results['first_step_seconds'],
          'step_s': step_s, 'steps': results['steps'], 'peak_mb': _peak_mb()}


def run_keras(section: str, steps: int | None) -> dict:
  import keras  # pylint: disable=import-outside-toplevel
  from keras.src.utils import file_utils  # pylint: disable=import-outside-toplevel
  file_utils.validate_file = lambda *args, **kwargs: True   # stand-ins: see the docstring
  start = time.perf_counter()
  job = globals()[ENTRIES[section].keras](keras)
  job.model.compile(optimizer=keras.optimizers.RMSprop(job.learning_rate), loss=job.loss,
                    metrics=list(job.metrics))
  train, validation, fit = job.train, job.validation, {}
  if isinstance(validation, float):
    fit['validation_split'] = validation
  elif validation is not None:
    fit['validation_data'] = validation
  if isinstance(train, tuple):
    x, y = train
    if steps is not None:     # the first `steps` batches (after Keras' validation split)
      keep = int(steps * job.batch_size / (1 - fit.get('validation_split', 0)))
      x, y = x[:keep], y[:keep]
    fit.update(x=x, y=y, batch_size=job.batch_size)
  else:
    fit['x'] = train.take(steps) if steps is not None else train
  ends = []

  class Timer(keras.callbacks.Callback):

    def on_train_batch_end(self, batch, logs=None):
      float((logs or {}).get('loss', 0.0))    # the step is done when its loss is read
      ends.append(time.perf_counter())

  fit_start = time.perf_counter()
  job.model.fit(epochs=1, verbose=0, callbacks=[Timer()], **fit)
  if job.test is not None:
    test = job.test
    job.model.evaluate(*(test if isinstance(test, tuple) else (test,)), verbose=0,
                       **({'batch_size': job.batch_size} if isinstance(test, tuple) else {}))
  return {'load_s': fit_start - start, 'first_s': ends[0] - fit_start,
          'step_s': (ends[-1] - ends[0]) / max(len(ends) - 1, 1), 'steps': len(ends),
          'peak_mb': _peak_mb(), 'keras': keras.__version__}


def child(spec: str) -> None:
  side, section, steps = spec.split(':')
  steps = int(steps) if steps else None
  out = (run_ours if side == 'ours' else run_keras)(section, steps)
  print('FULLSIZE ' + json.dumps(out), flush=True)


def timed_process(side: str, section: str, steps: int | None, root: str) -> dict:
  """One fresh process with HOME=root; its report, with `wait_s` (start to exit)."""
  env = dict(os.environ, HOME=root, KERAS_HOME=os.path.join(root, '.keras'))
  if side == 'keras':   # Keras broadcasts ranks (its Dense bias); the suite's strict setting
    env.pop('JAX_NUMPY_RANK_PROMOTION', None)   # is for our code only
  command = [sys.executable, '-m', 'scripts.benchmark_fullsize',
             f'--child={side}:{section}:{steps if steps is not None else ""}']
  start = time.perf_counter()
  proc = subprocess.run(command, capture_output=True, text=True, check=False, env=env,
                        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  wait = time.perf_counter() - start
  lines = [l for l in proc.stdout.splitlines() if l.startswith('FULLSIZE ')]
  if proc.returncode or not lines:
    raise RuntimeError(f'the {side} process of {section} failed:\n{proc.stderr[-4000:]}')
  return dict(json.loads(lines[-1][len('FULLSIZE '):]), wait_s=wait)


def prepare(root: str, sections, scale: float) -> None:
  """The stand-ins the sections read, and 5.3's random VGG16 base (Keras' .h5, converted)."""
  needed = sorted({d for s in sections for d in ENTRIES[s].standins})
  make_standins.make(root, needed, scale=scale, out=lambda line: print(line, flush=True))
  if '5.3' in sections:
    h5 = os.path.join(root, '.keras', 'models', VGG16_NOTOP)
    folder = os.path.join(root, 'weights', 'vgg16_notop')   # where imagenet:vgg16_notop goes
    if not os.path.exists(h5):
      import keras  # pylint: disable=import-outside-toplevel
      from keras.src.legacy.saving import legacy_h5_format  # pylint: disable=import-outside-toplevel
      import h5py  # pylint: disable=import-outside-toplevel
      keras.utils.set_random_seed(0)
      base = keras.applications.VGG16(weights=None, include_top=False)
      os.makedirs(os.path.dirname(h5), exist_ok=True)
      with h5py.File(h5 + '.partial', 'w') as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, base)
      os.replace(h5 + '.partial', h5)
    if not os.path.exists(folder):
      from projects.transfer import convert  # pylint: disable=import-outside-toplevel
      convert.convert('vgg16', h5, folder)


def _median(runs, key):
  values = [r[key] for r in runs]
  return statistics.median(values) if values else float('nan')


KEYS = ('load_s', 'first_s', 'step_s', 'wait_s', 'peak_mb')


def table(rows) -> str:
  head = ('| book | config | steps | load s (ours / Keras) | first step s | s/step | '
          'whole wait s | peak host MB |\n|---|---|---|---|---|---|---|---|\n')
  lines = []
  for r in rows:
    cells = []
    for key, fmt in zip(KEYS, ('{:.1f}', '{:.1f}', '{:.3f}', '{:.0f}', '{:,.0f}')):
      ours = fmt.format(r[f'ours_{key}'])
      keras = fmt.format(r[f'keras_{key}']) if f'keras_{key}' in r else '-'
      cells.append(f'{ours} / {keras}')
    lines.append(f"| {r['section']} | `{r['config'].split('configs/')[-1]}` | {r['steps']} | "
                 + ' | '.join(cells) + ' |')
  return head + '\n'.join(lines)


def main(_):
  if _CHILD.value:
    child(_CHILD.value)
    return
  if not _ROOT.value:
    raise UserError('--root is required: the folder of stand-ins (made there when missing)')
  sections = _ONLY.value or list(ENTRIES)
  unknown = [s for s in sections if s not in ENTRIES]
  if unknown:
    raise UserError(f'unknown section {unknown[0]!r}; choose from {", ".join(ENTRIES)}')
  if _REPEATS.value < 1:
    raise UserError(f'--repeats={_REPEATS.value}: give at least 1')
  root = os.path.abspath(os.path.expanduser(_ROOT.value))
  prepare(root, sections, SMOKE_SCALE if _SMOKE.value else 1.0)
  import jax  # pylint: disable=import-outside-toplevel
  rows = []
  for section in sections:
    entry = ENTRIES[section]
    steps = SMOKE_STEPS if _SMOKE.value else entry.steps
    sides = ['ours'] + ([] if _NO_KERAS.value else ['keras'])
    runs = {side: [] for side in sides}
    for _ in range(_REPEATS.value):
      for side in sides:
        runs[side].append(timed_process(side, section, steps, root))
    row = {'section': section, 'config': entry.config,
           'steps': steps if steps is not None else f'1 epoch ({runs["ours"][0]["steps"]})',
           'repeats': _REPEATS.value, 'device': jax.devices()[0].device_kind,
           'cpus': os.cpu_count(), 'jax': jax.__version__}
    for side, side_runs in runs.items():
      row.update({f'{side}_{key}': _median(side_runs, key) for key in KEYS})
    if 'keras' in runs:
      row['keras'] = runs['keras'][0]['keras']
      row['keras_steps'] = runs['keras'][0]['steps']
      row['wait_ratio'] = row['keras_wait_s'] / row['ours_wait_s']
      row['peak_ratio'] = row['keras_peak_mb'] / row['ours_peak_mb']
    rows.append(row)
    print(table([row]).splitlines()[-1], flush=True)
    with open(_OUTPUT.value, 'w') as f:     # after each row: a long run's rows so far
      json.dump(rows, f, indent=2)
  print(table(rows))
  print(f'wrote {_OUTPUT.value}')


if __name__ == '__main__':
  cli.run(main)
