"""The files the book's configs read, fetched on first use: one registry, one fetch path (pooch).

As Keras' `dataset_imdb()` and `tfds.load` do, a config's default data path that is not there
yet is downloaded, checked against its publisher's hash and cached; a path the user chose
elsewhere is never fetched (a typo must stay an error, not a download). Keras-format files go
where Keras puts them (~/.keras/datasets/), so a Keras user's earlier downloads are reused; an
archive is kept there too and the part a config reads is unpacked where the config reads it.

  python -m scripts.fetch --list          # what the registry holds, and what is here already
  python -m scripts.fetch --only imdb     # ahead of time, for compute nodes without network

pooch downloads into a temporary file beside the target and moves it into place only once its
hash matches, so a cut connection or a wrong file leaves nothing behind; archives are unpacked
into a staging folder and moved into place the same way. DLWR_MIRROR (or scripts.fetch
--mirror) replaces every origin by one base URL serving the files under their own names, so a
course can serve them itself. Offline, a fetch fails within seconds (a short connect timeout),
as one line naming the URL and the exact path to put the file at.
"""
import dataclasses
import logging
import os
import re
import shutil
import sys
import tarfile
import tempfile
import zipfile

from library.errors import UserError

MIRROR_ENV = 'DLWR_MIRROR'
# Connect: an offline machine or a silent firewall fails within seconds instead of hanging.
# Read: how long a slow server may pause mid-transfer before the download is given up.
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 60.0
UNVERIFIED_RECORD = 'fetched-unverified.sha256'

_KERAS = 'https://storage.googleapis.com/tensorflow/tf-keras-datasets/'
_KERAS_DIR = '~/.keras/datasets'
_KERAS_APPS = 'https://storage.googleapis.com/tensorflow/keras-applications/'
# Where each hash comes from. Keras pins its dataset files' hashes in its own source
# (keras/src/datasets/*.py, Keras 3.15.1): SHA-256 for the .npz files, MD5 (32 hex digits,
# which get_file's 'auto' reads as MD5) for the word indexes.
_FROM_KERAS = "Keras' source, keras/src/datasets/{}.py"
_UNPUBLISHED = 'its origin publishes no hash that could be confirmed here'


@dataclasses.dataclass(frozen=True)
class Entry:
  """One file of the registry. Paths start with ~, expanded when used (HOME may change)."""
  name: str
  url: str
  known_hash: str | None      # as pooch takes it ('sha256:<hex>', 'md5:<hex>'); None: unverified
  hash_source: str            # who publishes known_hash, or why there is none
  size: int | None            # bytes of the download where a source states it; shown, not checked
  what: str
  download: str               # where the downloaded file is kept
  unpack: tuple[str, ...] = ()  # archive members a loader reads, placed into unpack_to
  unpack_to: str = ''
  arch: str = ''              # weights: the network they are for (library.weights.resolve)

  @property
  def verified(self) -> bool:
    return self.known_hash is not None

  def targets(self) -> tuple[str, ...]:
    """The paths loaders read: the download itself, or the members unpacked from it."""
    if not self.unpack:
      return (_expand(self.download),)
    return tuple(os.path.join(_expand(self.unpack_to), m) for m in self.unpack)

  def shown_targets(self) -> tuple[str, ...]:
    return (self.download,) if not self.unpack else tuple(
        f'{self.unpack_to.rstrip("/")}/{m}' for m in self.unpack)

  def source_url(self, mirror: str | None = None) -> str:
    """The origin's URL, or the mirror's base URL + the file's own name."""
    if not mirror:
      return self.url
    return f'{mirror.rstrip("/")}/{self.url.rsplit("/", 1)[-1]}'


def _keras(name: str, file: str, known_hash: str, size: int | None, what: str,
           module: str) -> Entry:
  return Entry(name, _KERAS + file, known_hash, _FROM_KERAS.format(module), size, what,
               f'{_KERAS_DIR}/{file}')


# Sizes: the byte counts Keras prints when it downloads these files (public notebook logs),
# TFDS' checksums.tsv for aclImdb; shown by --list only.
REGISTRY: dict[str, Entry] = {e.name: e for e in (
    _keras('mnist', 'mnist.npz',
           'sha256:731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1',
           11490434, 'MNIST digits, 60,000 + 10,000 (book 2.1, 5.1, 8.4)', 'mnist'),
    _keras('imdb', 'imdb.npz',
           'sha256:69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f',
           17464789, 'IMDB reviews as word ranks, 25,000 + 25,000 (book 3.4, 6.1, 6.2)', 'imdb'),
    _keras('imdb_word_index', 'imdb_word_index.json', 'md5:bfafd718b763782e994055a2d397834f',
           1641221, "IMDB's word -> rank index", 'imdb'),
    _keras('reuters', 'reuters.npz',
           'sha256:d6586e694ee56d7a4e65172e12b3e987c03096cb01eab99753921ef915959916',
           2110848, 'Reuters newswires as word ranks, 11,228 in 46 topics (book 3.5)',
           'reuters'),
    _keras('reuters_word_index', 'reuters_word_index.json',
           'md5:4d44cc38712099c9e383dc6e5f11a921', None, "Reuters' word -> rank index",
           'reuters'),
    _keras('boston_housing', 'boston_housing.npz',
           'sha256:f553886a1f8d56431e820c5b82552d9d95cfcb96d1e678153f8839538947dff5',
           57026, 'Boston housing, 506 rows of 13 features (book 3.6)', 'boston_housing'),
    Entry('jena_climate', 'https://s3.amazonaws.com/keras-datasets/jena_climate_2009_2016.csv.zip',
          None, _UNPUBLISHED, 13568290,
          'Jena climate, 420,451 ten-minute rows of 14 measures, 2009-2016 (book 6.3)',
          f'{_KERAS_DIR}/jena_climate_2009_2016.csv.zip', ('jena_climate_2009_2016.csv',), '~'),
    Entry('nietzsche', 'https://s3.amazonaws.com/text-datasets/nietzsche.txt', None,
          _UNPUBLISHED, None, "Nietzsche's writings in English, 600,893 characters (book 8.1)",
          f'{_KERAS_DIR}/nietzsche.txt'),
    Entry('glove', 'https://nlp.stanford.edu/data/glove.6B.zip', None, _UNPUBLISHED, 862182613,
          'GloVe 6B word vectors (Wikipedia + Gigaword, 400,000 words); the 100-d file is '
          'unpacked (book 6.1)', f'{_KERAS_DIR}/glove.6B.zip', ('glove.6B.100d.txt',), '~'),
    Entry('aclimdb', 'https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz',
          'sha256:c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe',
          "TensorFlow Datasets' checksums.tsv (datasets/imdb_reviews, tensorflow-datasets "
          '4.9.10)', 84125825, "Stanford's raw IMDB reviews, one text file each, 25,000 + "
          '25,000 + 50,000 unlabelled (book 6.1)', f'{_KERAS_DIR}/aclImdb_v1.tar.gz',
          ('aclImdb',), '~'),
)}


def _keras_weights(arch: str, folder: str, top_md5: str, notop_md5: str, top_size: int | None,
                   notop_size: int | None, module: str) -> tuple[Entry, ...]:
  """The ImageNet weights keras.applications downloads (into ~/.keras/models/), with and
  without the classifier; a weights path `imagenet:<name>` (library.weights.resolve) fetches
  and converts them into our weight folder ~/weights/<name> on first use."""
  out = []
  for tail, md5, size in (('', top_md5, top_size), ('_notop', notop_md5, notop_size)):
    file = f'{arch}_weights_tf_dim_ordering_tf_kernels{tail}.h5'
    out.append(Entry(f'{arch}{tail}', f'{_KERAS_APPS}{folder}/{file}', f'md5:{md5}',
                     f"Keras' source, keras/src/applications/{module}.py", size,
                     f'{arch} ImageNet weights{" without the top" if tail else ""}, Keras .h5',
                     f'~/.keras/models/{file}', arch=arch))
  return tuple(out)


REGISTRY.update({e.name: e for e in (
    *_keras_weights('vgg16', 'vgg16', '64373286793e3c8b2b4e3219cbf3544b',
                    '6d6bbae143d832006294945121d1f1fc', 553467096, 58889256, 'vgg16'),
    *_keras_weights('vgg19', 'vgg19', 'cbe5617147190e668d6c5d5026f83318',
                    '253f8cb515780f3b799900260a226db6', None, 80134624, 'vgg19'),
    *_keras_weights('resnet50', 'resnet', '2cb95161c43110f7111970584f804107',
                    '4d473c1dd8becc155b73f8504c6f6626', None, 94765736, 'resnet'),
    *_keras_weights('inception_v3', 'inception_v3', '9a0d58056eeedaa3f26cb7ebd46da564',
                    'bcbd6486424b2319ff4ef7d526e38f63', None, 87910968, 'inception_v3'),
)})


def online(host: str = 'storage.googleapis.com', port: int = 443) -> bool:
  """Whether `host` (default: where Keras, TFDS and most registry files live) answers within
  CONNECT_TIMEOUT_S: a fast no on a machine without network, before a library that would hang."""
  import socket  # pylint: disable=import-outside-toplevel
  try:
    with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
      return True
  except OSError:
    return False


def _expand(path: str) -> str:
  return os.path.abspath(os.path.expanduser(path))


def entry_for(path: str) -> Entry | None:
  """The entry whose default place (a path loaders read) is `path`, or None."""
  full = _expand(path)
  return next((e for e in REGISTRY.values() if full in e.targets()), None)


def on_first_use(path: str) -> str:
  """`path`, ~ expanded; fetched first when it is missing and the default place of an entry.

  A missing path elsewhere is returned as it is: the caller's own "no such file" error follows,
  with `hint(path)` naming the entry that file would come from."""
  expanded = os.path.expanduser(path)
  if not os.path.exists(expanded):
    entry = entry_for(expanded)
    if entry is not None:
      fetch(entry.name)
  return expanded


def hint(path: str) -> str:
  """'' or a clause for a missing-file error: the registry entry a file of this name comes
  from, and how to get it."""
  base = os.path.basename(os.path.normpath(path))
  for entry in REGISTRY.values():
    names = {os.path.basename(t) for t in entry.shown_targets()}
    if base in names | {os.path.basename(entry.download)}:
      return (f'; {base} is the registry entry {entry.name!r}: leave the path at its default '
              f'{entry.shown_targets()[0]} to fetch it on first use, or run '
              f'python -m scripts.fetch --only {entry.name}')
  return ''


def lookup(name: str) -> Entry:
  if name not in REGISTRY:
    raise UserError(f'{name!r} is not in the registry; choose from {", ".join(REGISTRY)}')
  return REGISTRY[name]


def fetch(name: str, mirror: str | None = None) -> tuple[str, ...]:
  """Downloads entry `name` unless it is cached, checks its hash, unpacks what loaders read;
  returns those paths. mirror (default: $DLWR_MIRROR) replaces the origin."""
  entry = lookup(name)
  url = entry.source_url(mirror or os.environ.get(MIRROR_ENV))
  download = _expand(entry.download)
  folder, file = os.path.split(download)
  state = _state(entry, download)
  if state != 'cached':
    _writable(folder, entry, url)
    size = f' ({entry.size / 1e6:.1f} MB)' if entry.size else ''
    verb = 'fetching' if state == 'missing' else "replacing (not the registry's hash)"
    print(f'{verb} {entry.name}{size} from {url} into {download}', file=sys.stderr, flush=True)
    _retrieve(entry, url, folder, file)
    if not entry.verified:
      _record_unverified(entry, download)
  if entry.unpack:
    _unpack(entry, download, url)
  return entry.targets()


def _state(entry: Entry, download: str) -> str:
  """'missing', 'cached', or 'other' (there, but not the file the registry's hash names)."""
  if not os.path.exists(download):
    return 'missing'
  if entry.verified:
    import pooch  # pylint: disable=import-outside-toplevel
    algorithm, digest = entry.known_hash.split(':')
    if pooch.file_hash(download, alg=algorithm) != digest.lower():
      return 'other'
  return 'cached'


def _retrieve(entry: Entry, url: str, folder: str, file: str) -> None:
  """pooch.retrieve, its failures as one-line UserErrors; its own log lines silenced (the
  progress bar and our line above say it)."""
  import pooch  # pylint: disable=import-outside-toplevel
  import requests  # pylint: disable=import-outside-toplevel
  logger = pooch.get_logger()
  level = logger.level
  logger.setLevel(logging.WARNING)
  # 1 MiB chunks: pooch's default of 1 KiB costs a write and a flush per KiB (862 MB of GloVe).
  downloader = pooch.HTTPDownloader(progressbar=True, chunk_size=1 << 20,
                                    timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S))
  try:
    pooch.retrieve(url, entry.known_hash, fname=file, path=folder, downloader=downloader)
  except requests.RequestException as e:
    raise UserError(f'could not download {entry.name} from {url} ({_reason(e)}); nothing was '
                    f'kept. {_by_hand(entry)}') from None
  except ValueError as e:                     # pooch: the hash does not match
    got = re.search(r'but got (\w+)', str(e))
    raise UserError(
        f'{url} does not match the registry\'s {entry.known_hash.split(":")[0]} for '
        f'{entry.name} (expected {entry.known_hash.split(":")[-1]}, got '
        f'{got.group(1) if got else "another"}): refused, nothing was kept in {folder} (a '
        'mirror serving another file, or a file changed at its origin)') from None
  except OSError as e:
    raise UserError(f'cannot write {entry.name} into {folder} ({_oneline(e)}). '
                    f'{_by_hand(entry)}') from None
  finally:
    logger.setLevel(level)


def _reason(error) -> str:
  import requests  # pylint: disable=import-outside-toplevel
  if isinstance(error, requests.HTTPError) and error.response is not None:
    return f'HTTP {error.response.status_code} {error.response.reason}'
  if isinstance(error, requests.ConnectTimeout):
    return f'no connection within {CONNECT_TIMEOUT_S:g} s: offline?'
  if isinstance(error, requests.Timeout):
    return f'the server went silent for {READ_TIMEOUT_S:g} s'
  if isinstance(error, requests.exceptions.ChunkedEncodingError):
    return 'the connection broke off midway'
  errno = re.search(r'\[Errno -?\d+\] ([^\'")]+)', str(error))
  return errno.group(1).strip() if errno else type(error).__name__


def _oneline(error: Exception) -> str:
  return getattr(error, 'strerror', None) or ' '.join(str(error).split()) or type(error).__name__


def _by_hand(entry: Entry) -> str:
  """Where to put the file when fetching cannot work here."""
  put = (f'put the file at {_expand(entry.download)}' if not entry.unpack else
         f'put the file at {_expand(entry.download)} (or its {", ".join(entry.unpack)} at '
         f'{", ".join(entry.targets())})')
  return (f'On a machine with network run python -m scripts.fetch --only {entry.name}, or '
          f'download {entry.url} yourself, and {put} (or set {MIRROR_ENV} to a server holding '
          'it)')


def _writable(folder: str, entry: Entry, url: str) -> None:
  try:
    os.makedirs(folder, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder):
      pass
  except OSError as e:
    raise UserError(f'cannot write into {folder} to fetch {entry.name} from {url} '
                    f'({_oneline(e)}): make it writable, or put the file at '
                    f'{_expand(entry.download)} by hand') from None


def _record_unverified(entry: Entry, path: str) -> None:
  """A file without a publisher's hash: say so, and keep the hash it came with (sha256sum's
  format, beside it) so a later download can be compared and the registry completed."""
  import pooch  # pylint: disable=import-outside-toplevel
  digest = pooch.file_hash(path, alg='sha256')
  record = os.path.join(os.path.dirname(path), UNVERIFIED_RECORD)
  with open(record, 'a', encoding='utf-8') as f:
    f.write(f'{digest}  {os.path.basename(path)}\n')
  print(f'warning: {entry.name} is unverified ({entry.hash_source}); it arrived with sha256 '
        f'{digest}, recorded in {record}', file=sys.stderr, flush=True)


def _unpack(entry: Entry, archive: str, url: str) -> None:
  """The members loaders read, extracted by pooch into a staging folder beside their place and
  moved there whole: an interrupted unpack leaves no half-filled folder a loader would read."""
  import pooch  # pylint: disable=import-outside-toplevel
  place = _expand(entry.unpack_to)
  missing = [m for m in entry.unpack if not os.path.exists(os.path.join(place, m))]
  if not missing:
    return
  _writable(place, entry, url)
  staging = tempfile.mkdtemp(prefix=f'.{entry.name}-unpacking-', dir=place)
  extractor = pooch.Untar if '.tar' in os.path.basename(archive) else pooch.Unzip
  try:
    extractor(members=missing, extract_dir=staging)(archive, 'download', None)
    absent = [m for m in missing if not os.path.exists(os.path.join(staging, m))]
    if absent:
      raise ValueError(f'it has no {absent[0]}')
    for member in missing:
      os.replace(os.path.join(staging, member), os.path.join(place, member))
  except (ValueError, zipfile.BadZipFile, tarfile.TarError, EOFError) as e:
    if not entry.verified:       # a verified archive matched its hash: it is the right one
      os.remove(archive)
    raise UserError(f'{archive} (from {url}) cannot be unpacked ({_oneline(e)}): not the '
                    f'archive of {entry.name}; '
                    f'{"deleted, fetch it again" if not entry.verified else "delete it"}') \
        from None
  except OSError as e:
    raise UserError(f'cannot unpack {entry.name} into {place} ({_oneline(e)})') from None
  finally:
    shutil.rmtree(staging, ignore_errors=True)


def rows() -> list[dict]:
  """What scripts.fetch --list prints: each entry, its size, hash, place and whether it is here."""
  return [{'name': e.name, 'size': f'{e.size / 1e6:.1f} MB' if e.size else 'size ?',
           'hash': e.known_hash.split(':')[0] if e.verified else 'unverified',
           'here': 'yes' if all(os.path.exists(t) for t in e.targets()) else 'no',
           'where': ', '.join(e.shown_targets()) + (
               f' (from {e.download})' if e.unpack else ''), 'what': e.what}
          for e in REGISTRY.values()]
