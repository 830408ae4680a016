"""Data on first use, without the network: a loopback HTTP server that the tests start serves
files in the real formats the tests make, the registry points at it (DLWR_MIRROR) with those
files' hashes, and HOME is a temporary folder (~/.keras/datasets and ~ are the caches)."""
import dataclasses
import hashlib
import http.server
import io
import os
import socket
import tarfile
import threading
import time
import zipfile

import numpy as np
import pytest

from library.data import fetch, sequences, sources, text, timeseries
from library.errors import UserError
from tests.conftest import run_script
from tests.test_sequences import write_keras_imdb


class _Server:
  """Serves `files` (name -> bytes) at http://127.0.0.1:<port>/<name>, counting requests;
  a name in `cut` is sent with a Content-Length 1,000 bytes beyond what is written, then the
  connection closes: a download cut off midway."""

  def __init__(self):
    self.files, self.requests, self.cut = {}, [], set()
    server = self

    class Handler(http.server.BaseHTTPRequestHandler):

      def do_GET(self):  # pylint: disable=invalid-name
        name = self.path.lstrip('/')
        server.requests.append(name)
        if name not in server.files:
          self.send_error(404)
          return
        data = server.files[name]
        self.send_response(200)
        self.send_header('Content-Length', str(len(data) + (1000 if name in server.cut else 0)))
        self.end_headers()
        self.wfile.write(data[:len(data) // 2] if name in server.cut else data)

      def log_message(self, *args):
        pass

    self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    self.url = f'http://127.0.0.1:{self.httpd.server_address[1]}/'
    threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture(scope='module')
def server():
  s = _Server()
  yield s
  s.httpd.shutdown()
  s.httpd.server_close()


@pytest.fixture
def mirror(server, tmp_path, monkeypatch):
  """HOME in tmp_path, the registry served by the loopback server; serve(name, bytes, hash=)
  puts a file there and pins the registry entry to its hash (or to `hash`)."""
  server.files.clear()
  server.requests.clear()
  server.cut.clear()
  home = tmp_path / 'home'
  home.mkdir()
  monkeypatch.setenv('HOME', str(home))
  monkeypatch.setenv(fetch.MIRROR_ENV, server.url)

  def serve(name: str, data: bytes, known_hash: str | None = 'auto'):
    entry = fetch.REGISTRY[name]
    server.files[entry.url.rsplit('/', 1)[-1]] = data
    if known_hash == 'auto':
      known_hash = 'sha256:' + hashlib.sha256(data).hexdigest()
    monkeypatch.setitem(fetch.REGISTRY, name, dataclasses.replace(entry, known_hash=known_hash))

  server.serve, server.home, server.cache = serve, home, home / '.keras' / 'datasets'
  return server


def _imdb_bytes(tmp_path) -> bytes:
  with open(write_keras_imdb(tmp_path / 'made.npz'), 'rb') as f:
    return f.read()


def _one_line(error) -> str:
  message = str(error.value)
  assert '\n' not in message and 'Traceback' not in message
  return message


def test_first_use_downloads_checks_and_caches_and_a_second_use_makes_no_request(
    mirror, tmp_path, capsys):
  mirror.serve('imdb', _imdb_bytes(tmp_path))
  splits = sequences.load_keras_imdb('~/.keras/datasets/imdb.npz', 100)
  assert len(splits['train']['inputs']) == 48 and len(splits['test']['inputs']) == 24
  assert mirror.requests == ['imdb.npz']
  assert os.listdir(mirror.cache) == ['imdb.npz']          # no temporary file left beside it
  err = capsys.readouterr().err
  assert f'fetching imdb (17.5 MB) from {mirror.url}imdb.npz' in err
  assert '100%' in err                                      # pooch's progress bar
  again = sequences.load_keras_imdb('~/.keras/datasets/imdb.npz', 100)
  np.testing.assert_array_equal(again['train']['labels'], splits['train']['labels'])
  assert mirror.requests == ['imdb.npz']                    # the cache answered
  assert 'fetching' not in capsys.readouterr().err


def test_a_wrong_hash_is_refused_and_nothing_is_kept(mirror, tmp_path):
  mirror.serve('imdb', _imdb_bytes(tmp_path), known_hash='sha256:' + '0' * 64)
  with pytest.raises(UserError) as error:
    sequences.load_keras_imdb('~/.keras/datasets/imdb.npz', 100)
  assert 'does not match' in _one_line(error) and 'refused' in str(error.value)
  assert os.listdir(mirror.cache) == []


def test_a_download_cut_off_midway_leaves_nothing_and_the_rerun_completes(mirror, tmp_path):
  mirror.serve('imdb', _imdb_bytes(tmp_path))
  mirror.cut.add('imdb.npz')
  with pytest.raises(UserError) as error:
    sequences.load_keras_imdb('~/.keras/datasets/imdb.npz', 100)
  assert 'broke off midway' in _one_line(error)
  assert os.listdir(mirror.cache) == []                     # no half-written imdb.npz
  mirror.cut.clear()
  assert len(sequences.load_keras_imdb('~/.keras/datasets/imdb.npz', 100)['train']['inputs'])
  assert mirror.requests == ['imdb.npz', 'imdb.npz']


def test_nothing_listening_is_one_line_within_seconds_naming_the_url_and_the_place(
    mirror, monkeypatch):
  with socket.socket() as s:                                # a port that nothing listens on
    s.bind(('127.0.0.1', 0))
    closed = f'http://127.0.0.1:{s.getsockname()[1]}'
  monkeypatch.setenv(fetch.MIRROR_ENV, closed)
  start = time.monotonic()
  with pytest.raises(UserError) as error:
    sources.load_npz('~/.keras/datasets/mnist.npz')
  assert time.monotonic() - start < 5
  message = _one_line(error)
  assert f'{closed}/mnist.npz' in message and 'python -m scripts.fetch --only mnist' in message
  assert f'put the file at {mirror.cache / "mnist.npz"}' in message
  assert not os.listdir(mirror.cache)


def test_a_cache_folder_that_cannot_be_written_is_one_line(mirror, tmp_path):
  mirror.serve('boston_housing', _imdb_bytes(tmp_path))
  (mirror.home / '.keras').write_text('a file where the cache folder would be')
  with pytest.raises(UserError) as error:
    sequences.load_keras_boston('~/.keras/datasets/boston_housing.npz')
  assert 'cannot write into' in _one_line(error) and not mirror.requests


@pytest.mark.skipif(hasattr(os, 'geteuid') and os.geteuid() == 0,
                    reason='root writes into a read-only folder anyway; the test above covers '
                    'an unwritable cache in a way that also holds for root')
def test_a_read_only_cache_folder_is_one_line(mirror, tmp_path):
  mirror.serve('boston_housing', _imdb_bytes(tmp_path))
  mirror.cache.mkdir(parents=True)
  mirror.cache.chmod(0o500)
  try:
    with pytest.raises(UserError) as error:
      sequences.load_keras_boston('~/.keras/datasets/boston_housing.npz')
    assert 'cannot write into' in _one_line(error)
  finally:
    mirror.cache.chmod(0o700)


def test_a_missing_file_elsewhere_is_not_fetched_but_named(mirror, tmp_path):
  with pytest.raises(UserError) as error:
    sequences.load_keras_imdb(str(tmp_path / 'data' / 'imdb.npz'), 100)
  assert "registry entry 'imdb'" in _one_line(error) and 'no such file' in str(error.value)
  assert not mirror.requests


def _zip(members: dict[str, bytes]) -> bytes:
  out = io.BytesIO()
  with zipfile.ZipFile(out, 'w') as z:
    for name, data in members.items():
      z.writestr(name, data)
  return out.getvalue()


def test_an_unverified_archive_is_fetched_with_a_warning_and_unpacked_where_read(
    mirror, tmp_path, capsys):
  csv = tmp_path / 'jena.csv'
  timeseries.write_jena_like(csv, rows=50)
  mirror.serve('jena_climate', _zip({'jena_climate_2009_2016.csv': csv.read_bytes(),
                                     '__MACOSX/._jena_climate_2009_2016.csv': b'junk'}), None)
  series, columns = timeseries.load_csv('~/jena_climate_2009_2016.csv', ('Date Time',))
  assert series.shape == (50, 14) and len(columns) == 14
  assert sorted(os.listdir(mirror.home)) == ['.keras', 'jena_climate_2009_2016.csv']
  err = capsys.readouterr().err
  assert 'warning: jena_climate is unverified' in err
  record = (mirror.cache / fetch.UNVERIFIED_RECORD).read_text()
  digest = hashlib.sha256(mirror.files['jena_climate_2009_2016.csv.zip']).hexdigest()
  assert record == f'{digest}  jena_climate_2009_2016.csv.zip\n' and digest in err
  os.remove(mirror.home / 'jena_climate_2009_2016.csv')   # unpacked again from the kept zip
  timeseries.load_csv('~/jena_climate_2009_2016.csv', ('Date Time',))
  assert mirror.requests == ['jena_climate_2009_2016.csv.zip']


def test_glove_aclimdb_and_the_text_corpus_come_on_first_use(mirror, tmp_path):
  from projects.generative import text as text_task  # pylint: disable=import-outside-toplevel
  vectors = b''.join(f'{w} {" ".join(["0.5"] * 4)}\n'.encode() for w in ('the', 'cat'))
  mirror.serve('glove', _zip({'glove.6B.100d.txt': vectors, 'glove.6B.50d.txt': b'x 1\n'}))
  matrix = text.load_glove('~/glove.6B.100d.txt', {'cat': 1, 'dog': 2}, 3)
  assert matrix.shape == (3, 4) and matrix[1].tolist() == [0.5] * 4
  assert not (mirror.home / 'glove.6B.50d.txt').exists()   # only what the config reads

  tarball = io.BytesIO()
  with tarfile.open(fileobj=tarball, mode='w:gz') as tar:
    for split in ('train', 'test'):
      for label in ('neg', 'pos'):
        data = f'a {label} review'.encode()
        info = tarfile.TarInfo(f'aclImdb/{split}/{label}/0_1.txt')
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
  mirror.serve('aclimdb', tarball.getvalue())
  splits = sources.load_text_folder('~/aclImdb', ('train', 'test'), ())
  assert list(splits['test']['inputs']) == ['a neg review', 'a pos review']

  mirror.serve('nietzsche', b'PREFACE\n\nSUPPOSING that Truth is a woman--what then?\n', None)
  corpus, _ = text_task.read_corpus('~/.keras/datasets/nietzsche.txt', True)
  assert corpus.startswith('preface')
  assert sorted(mirror.requests) == ['aclImdb_v1.tar.gz', 'glove.6B.zip', 'nietzsche.txt']
  assert not [n for n in os.listdir(mirror.home) if 'unpacking' in n]


def test_a_book_config_trains_from_the_mirror_and_the_second_run_makes_no_request(
    mirror, tmp_path, load_config):
  from library import train  # pylint: disable=import-outside-toplevel
  mirror.serve('imdb', _imdb_bytes(tmp_path))
  config = load_config('configs/mlp/imdb_holdout.py', 'smoke')
  assert config.data.path == '~/.keras/datasets/imdb.npz'     # the default, as a user runs it
  first = train.train_and_evaluate(config, str(tmp_path / 'first'))
  assert np.isfinite(first['test']['loss']) and mirror.requests == ['imdb.npz']
  second = train.train_and_evaluate(config, str(tmp_path / 'second'))
  assert second['test']['loss'] == pytest.approx(first['test']['loss'])
  assert mirror.requests == ['imdb.npz']


def _mnist_bytes(tmp_path, n_train=512, n_test=256) -> bytes:
  """Keras' mnist.npz layout ((N, 28, 28) uint8, no channel axis): each class a bright bar at
  its own place over noise, so a few steps learn it."""
  rng = np.random.default_rng(0)

  def digits(n):
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for i, label in enumerate(labels):
      images[i, 2 + 2 * label:4 + 2 * label, 4:24] = 255
    return images, labels

  (x_train, y_train), (x_test, y_test) = digits(n_train), digits(n_test)
  buffer = io.BytesIO()
  np.savez(buffer, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
  return buffer.getvalue()


@pytest.mark.parametrize('path', ['configs/mlp/mnist_dense.py',
                                  'configs/convnets/mnist_convnet.py'])
def test_book_mnist_configs_learn_from_keras_mnist_npz_fetched_on_first_use(
    mirror, tmp_path, load_config, path):
  from library import train  # pylint: disable=import-outside-toplevel
  mirror.serve('mnist', _mnist_bytes(tmp_path))
  config = load_config(path, 'smoke')
  assert (config.data.source, config.data.path) == ('npz', '~/.keras/datasets/mnist.npz')
  config.num_train_steps, config.eval_every_steps = 100, 100
  results = train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert mirror.requests == ['mnist.npz']
  assert results['test']['accuracy'] > 0.3        # chance: 0.1
  with np.load(mirror.cache / 'mnist.npz') as f:
    assert f['x_train'].shape == (512, 28, 28)    # kept as Keras has it; the channel is ours


def _keras_applications_file(tmp_path) -> tuple[bytes, object]:
  """VGG16 without its top, random weights, written as keras.applications' release .h5 files
  are (a weights-only legacy HDF5: layer_names at the root), and the Keras model."""
  import h5py  # pylint: disable=import-outside-toplevel
  from keras.src.legacy.saving import legacy_h5_format  # pylint: disable=import-outside-toplevel
  from tests.test_transfer import keras_model  # pylint: disable=import-outside-toplevel
  model = keras_model('vgg16', include_top=False, input_shape=(32, 32, 3))
  path = tmp_path / 'vgg16_notop.h5'
  with h5py.File(path, 'w') as f:
    legacy_h5_format.save_weights_to_hdf5_group(f, model)
  return path.read_bytes(), model


def test_imagenet_weights_by_name_are_fetched_converted_once_and_reused(mirror, tmp_path):
  from library import weights  # pylint: disable=import-outside-toplevel
  from projects.transfer import convert  # pylint: disable=import-outside-toplevel
  from tests.test_transfer import images, keras_outputs  # pylint: disable=import-outside-toplevel
  data, keras_net = _keras_applications_file(tmp_path)
  mirror.serve('vgg16_notop', data, 'md5:' + hashlib.md5(data).hexdigest())   # as Keras pins
  folder = weights.resolve('imagenet:vgg16_notop')
  assert folder == str(mirror.home / 'weights' / 'vgg16_notop')
  assert (mirror.home / '.keras' / 'models' / fetch.REGISTRY['vgg16_notop'].url.rsplit(
      '/', 1)[-1]).is_file() and mirror.requests == [fetch.REGISTRY['vgg16_notop'].url.rsplit(
          '/', 1)[-1]]
  model, variables = convert.load('vgg16', 'imagenet:vgg16_notop')     # read back by name
  x = images(32)
  np.testing.assert_allclose(convert.predict(model, variables, x), keras_outputs(keras_net, x),
                             rtol=1e-4, atol=1e-3)
  assert weights.resolve('imagenet:vgg16_notop') == folder and len(mirror.requests) == 1
  with pytest.raises(UserError, match='imagenet:vgg16_notop') as info:
    weights.resolve('imagenet:vgg17')
  _one_line(info)
  assert 'imagenet:inception_v3_notop' in str(info.value)


def test_the_fetch_script_lists_fetches_and_fails_in_one_line(mirror, tmp_path):
  env = {'HOME': str(mirror.home), fetch.MIRROR_ENV: mirror.url}
  listed = run_script('scripts.fetch', '--list', env_extra=env)
  assert listed.returncode == 0, listed.stderr
  lines = {l.split()[0]: l for l in listed.stdout.splitlines()}
  assert set(fetch.REGISTRY) < set(lines)
  assert ' sha256 ' in lines['imdb'] and ' unverified ' in lines['glove']
  assert '~/.keras/datasets/imdb.npz' in lines['imdb']
  # The real registry's hash against the loopback's stand-in: refused, in one line.
  mirror.files['boston_housing.npz'] = _imdb_bytes(tmp_path)
  refused = run_script('scripts.fetch', '--only=boston_housing', env_extra=env)
  assert refused.returncode == 2 and refused.stderr.count('error:') == 1
  assert 'does not match' in refused.stderr and not os.listdir(mirror.cache)
  mirror.files['nietzsche.txt'] = b'a short corpus'
  fetched = run_script('scripts.fetch', '--only=nietzsche', f'--mirror={mirror.url}',
                       env_extra={'HOME': str(mirror.home)})
  assert fetched.returncode == 0, fetched.stderr
  assert fetched.stdout.strip() == f'nietzsche: {mirror.cache / "nietzsche.txt"}'
  assert ' yes ' in run_script('scripts.fetch', '--list', env_extra=env).stdout.splitlines()[
      list(fetch.REGISTRY).index('nietzsche') + 1]


def test_fetch_replaces_a_cached_file_whose_hash_is_not_the_registrys(mirror, tmp_path, capsys):
  mirror.serve('imdb', _imdb_bytes(tmp_path))
  mirror.cache.mkdir(parents=True)
  (mirror.cache / 'imdb.npz').write_bytes(b'an older or other file')
  assert fetch.fetch('imdb') == (str(mirror.cache / 'imdb.npz'),)
  assert (mirror.cache / 'imdb.npz').read_bytes() == mirror.files['imdb.npz']
  assert "replacing (not the registry's hash) imdb" in capsys.readouterr().err
  fetch.fetch('imdb')                                       # now cached: no request
  assert mirror.requests == ['imdb.npz']


def test_an_unverified_archive_that_is_not_one_is_deleted_and_the_rerun_completes(mirror):
  mirror.serve('glove', b'<html>a login page, not a zip</html>', None)
  with pytest.raises(UserError) as error:
    text.load_glove('~/glove.6B.100d.txt', {'the': 1}, 2)
  assert 'cannot be unpacked' in _one_line(error) and 'deleted' in str(error.value)
  assert sorted(os.listdir(mirror.cache)) == [fetch.UNVERIFIED_RECORD]
  assert sorted(os.listdir(mirror.home)) == ['.keras']       # no staging folder left
  mirror.serve('glove', _zip({'glove.6B.100d.txt': b'the 1 2\n'}), None)
  assert text.load_glove('~/glove.6B.100d.txt', {'the': 1}, 2).tolist() == [[0, 0], [1, 2]]


def test_md5_entries_verify_as_keras_does(mirror):
  weights = b'\x89HDF\r\n\x1a\n stand-in weights'
  mirror.serve('vgg16_notop', weights, 'md5:' + hashlib.md5(weights).hexdigest())
  [path] = fetch.fetch('vgg16_notop')
  assert path == str(mirror.home / '.keras' / 'models' /
                     'vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5')
  mirror.serve('imdb_word_index', b'{"the": 1}', 'md5:' + '0' * 32)
  with pytest.raises(UserError, match='does not match the registry.s md5'):
    fetch.fetch('imdb_word_index')
