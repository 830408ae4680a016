"""Anomaly detection with an autoencoder: trains on normal examples only (unless the workdir
has finished), scores validation and test examples by reconstruction error, picks the threshold
with the best validation F1, and reports the test ROC AUC, precision, recall and F1.

  python -m scripts.anomaly --config=configs/autoencoders/digits.py:anomaly --workdir=/tmp/ae9
  python -m scripts.anomaly --config=configs/autoencoders/breast_cancer.py --workdir=/tmp/bc

Writes W/anomaly.json and W/anomaly.png (the two score histograms and the threshold), beside the
run's own files (projects/autoencoders/analysis.py).
"""
import json
import os

from library import cli

_FLAGS = cli.RunFlags('the autoencoder run; anomaly.json and .png go here too')


def main(_):
  from library import parallel, writers  # pylint: disable=import-outside-toplevel
  from library.errors import UserError  # pylint: disable=import-outside-toplevel
  from projects.autoencoders import analysis  # pylint: disable=import-outside-toplevel
  _FLAGS.start()
  if _FLAGS.config.task != 'projects.autoencoders.task':
    raise UserError(f'--config is a run of task={_FLAGS.config.task!r}; scripts.anomaly needs '
                    'an autoencoder (task=projects.autoencoders.task)')
  if _FLAGS.start_over:
    raise UserError('scripts.anomaly reuses a finished run; to retrain, use another --workdir')
  report = analysis.anomaly(_FLAGS.config, _FLAGS.workdir)
  if parallel.is_main_process():
    writers.write_json_atomic(os.path.join(_FLAGS.workdir, 'anomaly.json'), report)
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in report.items()}))


if __name__ == '__main__':
  cli.run(main)
