"""Trains a config; rerunning the same command resumes from the workdir's latest checkpoint.

  python -m scripts.train --config=configs/convnets/mnist_convnet.py:embedded \
      --workdir=/tmp/run --config.optimizer.learning_rate=1e-3
"""
import json

from library import cli

_FLAGS = cli.RunFlags('checkpoints, metrics and plots go here')


def main(_):
  from library import parallel, train  # pylint: disable=import-outside-toplevel
  _FLAGS.start()
  results = train.train_and_evaluate(_FLAGS.config, _FLAGS.workdir, start_over=_FLAGS.start_over)
  if parallel.is_main_process():
    print(json.dumps({k: results[k] for k in ('test', 'validation', 'steps', 'train_seconds')
                      if k in results}))
    print(f'results, history.png and TensorBoard events are in {_FLAGS.workdir}')


if __name__ == '__main__':
  cli.run(main)
