"""k-means on raw inputs against k-means on an autoencoder's codes (trained first unless the
workdir has finished): adjusted Rand index and normalized mutual information against the labels.

  python -m scripts.cluster --config=configs/autoencoders/digits.py --workdir=/tmp/ae

Writes W/clusters.json and W/clusters.png (the codes on their 2 principal axes, coloured by
cluster and by label; projects/autoencoders/analysis.py).
"""
from library import cli

_FLAGS = cli.RunFlags('the autoencoder run; clusters.json and .png go here too')


def main(_):
  from projects.autoencoders import analysis  # pylint: disable=import-outside-toplevel
  analysis.script_main(_FLAGS, 'cluster', analysis.clusters, 'clusters.json')


if __name__ == '__main__':
  cli.run(main)
