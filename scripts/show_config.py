"""Prints a config's keys with their values, and the variants its file offers; runs nothing.

  python -m scripts.show_config --config=configs/mlp/mnist_dense.py:embedded
  python -m scripts.show_config --config=configs/mlp/mnist_dense.py --config.batch_size=64

Each line is one key as `--config.<key>` takes it, with its value. Then the file's variants
(`:variant`, several joined by commas) and the first paragraph of its docstring.
"""
from absl import flags
from ml_collections import config_flags

from library import cli

_CONFIG = config_flags.DEFINE_config_file('config', None, 'config file[:variant]')
flags.mark_flags_as_required(['config'])


def main(_):
  from library import config as config_lib  # pylint: disable=import-outside-toplevel
  for key, value in config_lib.flat_keys(_CONFIG.value, '', ()).items():
    print(f'{key} = {value!r}')
  path = flags.FLAGS['config'].config_filename.split(':', 1)[0]
  module = cli.config_module(path, 'shown_config')
  variants = getattr(module, 'VARIANTS', ())
  print(f'\nvariants of {path}: {", ".join(variants) if variants else "none"}')
  doc = (module.__doc__ or '').strip().split('\n\n')[0]
  if doc:
    print(f'\n{doc}')


if __name__ == '__main__':
  cli.run(main)
