"""`python -m tests.record_rows OUT.json <scripts.train flags>`: scripts.train, writing which
rows of each split this process read from host memory ({split: [row, ...]} in reading order),
for tests/test_scripts.py's per-host data test on two processes."""
import atexit
import json
import runpy
import sys

import numpy as np

from library import steps
from library.data import timeseries


def main() -> None:
  out = sys.argv.pop(1)
  read, reading = {}, []
  args, gather = steps.MeshData.args, timeseries.gather

  def recording_args(self, split, idx, weights):
    reading.append(split)
    try:
      return args(self, split, idx, weights)
    finally:
      reading.pop()

  def recording_gather(split, idx):
    if reading and isinstance(idx, np.ndarray):   # host reads only; not the traced gathers
      read.setdefault(reading[-1], []).extend(np.ravel(idx).tolist())
    return gather(split, idx)

  steps.MeshData.args = recording_args
  timeseries.gather = recording_gather

  def write():
    with open(out, 'w') as f:
      json.dump(read, f)

  atexit.register(write)
  runpy.run_module('scripts.train', run_name='__main__', alter_sys=True)


if __name__ == '__main__':
  main()
