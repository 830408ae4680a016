"""k-means on raw inputs against k-means on an autoencoder's codes (trained first unless the
workdir has finished): adjusted Rand index and normalized mutual information against the labels.

  python -m scripts.cluster --config=configs/autoencoders/digits.py --workdir=/tmp/ae

Writes W/clusters.json and W/clusters.png (the codes on their 2 principal axes, coloured by
cluster and by label; projects/autoencoders/analysis.py).
"""
import json
import os

from library import cli

_FLAGS = cli.RunFlags('the autoencoder run; cluster.json and .png go here too')


def main(_):
  from library import parallel, writers  # pylint: disable=import-outside-toplevel
  from library.errors import UserError  # pylint: disable=import-outside-toplevel
  from projects.autoencoders import analysis  # pylint: disable=import-outside-toplevel
  _FLAGS.start()
  if _FLAGS.config.task != 'projects.autoencoders.task':
    raise UserError(f'--config is a run of task={_FLAGS.config.task!r}; scripts.cluster needs '
                    'an autoencoder (task=projects.autoencoders.task)')
  if _FLAGS.start_over:
    raise UserError('scripts.cluster reuses a finished run; to retrain, use another --workdir')
  report = analysis.clusters(_FLAGS.config, _FLAGS.workdir)
  if parallel.is_main_process():
    writers.write_json_atomic(os.path.join(_FLAGS.workdir, 'clusters.json'), report)
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in report.items()}))


if __name__ == '__main__':
  cli.run(main)
