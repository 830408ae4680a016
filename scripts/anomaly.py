"""Anomaly detection with an autoencoder: trains on normal examples only (unless the workdir
has finished), scores validation and test examples by reconstruction error, picks the threshold
with the best validation F1, and reports the test ROC AUC, precision, recall and F1.

  python -m scripts.anomaly --config=configs/autoencoders/digits.py:anomaly --workdir=/tmp/ae9
  python -m scripts.anomaly --config=configs/autoencoders/breast_cancer.py --workdir=/tmp/bc

Writes W/anomaly.json and W/anomaly.png (the two score histograms and the threshold), beside the
run's own files (projects/autoencoders/analysis.py).
"""
from library import cli

_FLAGS = cli.RunFlags('the autoencoder run; anomaly.json and .png go here too')


def main(_):
  from projects.autoencoders import analysis  # pylint: disable=import-outside-toplevel
  analysis.script_main(_FLAGS, 'anomaly', analysis.anomaly, 'anomaly.json')


if __name__ == '__main__':
  cli.run(main)
