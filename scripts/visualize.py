"""Book 5.4: what a convnet sees, as PNGs: activation maps, filter patterns, Grad-CAM.

  python -m scripts.visualize --config=configs/convnets/visualize.py:digits \
      --config.init=/tmp/convnet --output=/tmp/vis
Writes OUTPUT/activations.png, filters_<layer>.png, gradcam.png and summary.json
(projects/convnets/visualize.py; the keys in its default_config).
"""
from absl import flags
from ml_collections import config_flags

from library import cli

_CONFIG = config_flags.DEFINE_config_file('config', None, 'config file[:variant]',
                                          lock_config=True)
_OUTPUT = flags.DEFINE_string('output', None, 'the folder the PNGs go to')
flags.mark_flags_as_required(['config', 'output'])


def main(_):
  from projects.convnets import visualize  # pylint: disable=import-outside-toplevel
  visualize.validate(_CONFIG.value)
  visualize.run(_CONFIG.value, _OUTPUT.value)
  print(f'PNGs are in {_OUTPUT.value}')


if __name__ == '__main__':
  cli.run(main)
