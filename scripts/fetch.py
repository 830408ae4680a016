"""Fetches the book's data files ahead of time (e.g. for compute nodes without network).

  python -m scripts.fetch --list
  python -m scripts.fetch --only imdb --only reuters
  python -m scripts.fetch --only vgg16_notop     # Keras' ImageNet weights, for convert_weights
  python -m scripts.fetch --all --mirror=https://course.example.org/dlwr-data/

Each file is checked against its publisher's hash (Keras pins its dataset files' hashes;
entries without one are marked unverified) and cached where the configs read it
(library/data/fetch.py holds the registry). Training fetches a config's default files on first
use anyway; this is for fetching before, or on another machine. --mirror (or DLWR_MIRROR)
replaces every origin by a server holding the files under their own names.
"""
from absl import flags

from library import cli
from library.data import fetch
from library.errors import UserError

_ONLY = flags.DEFINE_multi_string('only', [], 'a registry entry to fetch (repeatable)')
_ALL = flags.DEFINE_bool('all', False, 'fetch every entry of the registry (about 2.6 GB)')
_LIST = flags.DEFINE_bool('list', False, 'list the entries: size, hash, whether here, where')
_MIRROR = flags.DEFINE_string('mirror', None, 'base URL replacing every origin (as DLWR_MIRROR)')


def main(_):
  if _LIST.value:
    rows = fetch.rows()
    widths = {k: max(len(k), *(len(r[k]) for r in rows)) for k in ('name', 'size', 'hash', 'here')}
    print('  '.join(k.ljust(widths[k]) for k in widths) + '  where')
    for r in rows:
      print('  '.join(r[k].ljust(widths[k]) for k in widths) + f'  {r["where"]}: {r["what"]}')
    return
  names = list(fetch.REGISTRY) if _ALL.value else _ONLY.value
  if not names:
    raise UserError('name what to fetch: --only NAME (repeatable), --all, or --list to see '
                    f'the names ({", ".join(fetch.REGISTRY)})')
  for name in names:
    fetch.lookup(name)                  # every name checked before the first download
  for name in names:
    for path in fetch.fetch(name, _MIRROR.value):
      print(f'{name}: {path}')


if __name__ == '__main__':
  cli.run(main)
