"""What the checkpoints' checksums cost: sealing after a save, verifying before a restore.

  python -m scripts.benchmark_checkpoints                      # the book's model sizes
  python -m scripts.benchmark_checkpoints --params 0.1,15 --repeats 5

For each size (millions of float32 parameters; the state holds them and two optimizer
moments, as Adam's and RMSprop's do), a state is saved with the loop's Checkpointer
(library/checkpoints.py) and read back, each timed in its parts: orbax's save (to disk,
complete) and the seal (the size and CRC-32 of every file), the verification and orbax's
restore. Medians of --repeats; the same files, warm in the page cache after the first save,
as they are when a run reads what it wrote. Writes benchmark_checkpoints.json.

The sizes by default: 0.09 M (5.1's convnet), 0.41 M (2.1's dense net), 3.45 M (5.2's
convnet), 14.7 M (VGG16's convolutional base, 5.3 fine-tuning), 23.9 M (InceptionV3, 8.2).
"""
import json
import os
import statistics
import tempfile
import time

from absl import flags

from library import cli
from library.errors import UserError

_PARAMS = flags.DEFINE_string('params', '0.09,0.41,3.45,14.7,23.9',
                              'comma-separated sizes, in millions of parameters')
_REPEATS = flags.DEFINE_integer('repeats', 5, 'saves and restores per size; medians reported')
_OUTPUT = flags.DEFINE_string('output', 'benchmark_checkpoints.json', 'where the table goes')


def _state(millions: float):
  """Parameters in layers of at most 1 M, and two moments of each: a trained model's state."""
  import jax  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  total, sizes = int(millions * 1e6), []
  while sum(sizes) < total:
    sizes.append(min(1 << 20, total - sum(sizes)))
  params = {f'layer_{i}': rng.standard_normal(n).astype(np.float32)
            for i, n in enumerate(sizes)}
  state = {'params': params, 'mu': params, 'nu': jax.tree.map(np.abs, params)}
  return jax.device_put(state)


def measure(millions: float, repeats: int, folder: str) -> dict:
  from library import checkpoints  # pylint: disable=import-outside-toplevel
  state = _state(millions)
  times = {'save_s': [], 'seal_s': [], 'verify_s': [], 'restore_s': []}
  ckpt = checkpoints.Checkpointer(folder, keep=1, async_save=False)
  try:
    for step in range(1, repeats + 1):
      start = time.perf_counter()
      ckpt.save(step, state, {'step': step})      # synchronous: complete on disk
      saved = time.perf_counter()
      ckpt.wait()                                  # the seal
      sealed = time.perf_counter()
      assert checkpoints.verify(ckpt.step_dir(step)) is None
      verified = time.perf_counter()
      ckpt.restore(checkpoints.abstract(state), step)
      restored = time.perf_counter()
      # (restore verifies again: its own time is the whole restore less one verification)
      times['save_s'].append(saved - start)
      times['seal_s'].append(sealed - saved)
      times['verify_s'].append(verified - sealed)
      times['restore_s'].append(restored - verified - (verified - sealed))
    files = checkpoints.file_checksums(ckpt.step_dir(repeats))
  finally:
    ckpt.close()
  row = {'params_millions': millions,
         'megabytes': round(sum(size for size, _ in files.values()) / 1e6, 1),
         **{k: statistics.median(v) for k, v in times.items()}}
  row['seal_share_of_save'] = row['seal_s'] / row['save_s']
  row['verify_share_of_restore'] = row['verify_s'] / max(row['restore_s'], 1e-9)
  return row


def main(_):
  try:
    sizes = [float(x) for x in _PARAMS.value.split(',') if x.strip()]
  except ValueError:
    raise UserError(f'--params={_PARAMS.value!r}: give sizes in millions, e.g. 0.1,15') from None
  if not sizes or min(sizes) <= 0:
    raise UserError(f'--params={_PARAMS.value!r}: give sizes above 0, in millions')
  if _REPEATS.value < 1:
    raise UserError(f'--repeats={_REPEATS.value} must be at least 1')
  rows = []
  for millions in sizes:
    with tempfile.TemporaryDirectory() as folder:
      row = measure(millions, _REPEATS.value, os.path.join(folder, 'checkpoints'))
    rows.append(row)
    print(f'{millions:g} M parameters ({row["megabytes"]:g} MB on disk): save '
          f'{row["save_s"] * 1e3:.0f} ms + seal {row["seal_s"] * 1e3:.1f} ms '
          f'({row["seal_share_of_save"]:.1%}); restore {row["restore_s"] * 1e3:.0f} ms + '
          f'verify {row["verify_s"] * 1e3:.1f} ms ({row["verify_share_of_restore"]:.1%})',
          flush=True)
  with open(_OUTPUT.value, 'w') as f:
    json.dump(rows, f, indent=2)


if __name__ == '__main__':
  cli.run(main)
