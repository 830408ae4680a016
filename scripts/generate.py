"""Writes samples of a trained generative workdir: text, the VAE's grid, the GAN's grid.

  python -m scripts.generate --workdir=/tmp/vae --output=/tmp/vae/samples
  python -m scripts.generate --workdir=/tmp/text --set=task_config.temperatures=0.5 \
      --set=task_config.num_samples=5

Loads the workdir's checkpoint (--checkpoint) and writes what its task writes at every
evaluation (Task.artifacts; for members, each member's), here into --output: text samples
at task_config.temperatures (projects/generative/text.py), the VAE's latent grid and
scatter, the GAN's sample grid. --set changes the task's sampling settings
(task_config.temperatures, num_samples, sample_length, grid, ...) for this call only; the
workdir is left as it is. Text samples are also printed.
"""
from absl import flags

from library import cli

_WORKDIR = flags.DEFINE_string('workdir', None, 'a workdir trained with a generative config')
_OUTPUT = flags.DEFINE_string('output', '', 'where the samples go (default: WORKDIR/samples)')
_CHECKPOINT = flags.DEFINE_string('checkpoint', 'latest', 'latest, best, or a step number')
_SET = flags.DEFINE_multi_string('set', [], 'task_config.KEY=VALUE: a sampling setting for '
                                 'this call (e.g. task_config.temperatures=0.5,1.0)')
flags.mark_flags_as_required(['workdir'])


def main(_):
  from library import inference  # pylint: disable=import-outside-toplevel
  produced, paths = inference.write_samples(_WORKDIR.value, _OUTPUT.value,
                                            _CHECKPOINT.value, _SET.value)
  print('\n'.join(paths))
  for name, value in produced.items():
    if isinstance(value, str):
      print(f'\n{name}:\n{value}')


if __name__ == '__main__':
  cli.run(main)
