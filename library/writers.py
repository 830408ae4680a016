"""Where metrics go: metrics.jsonl, TensorBoard events, results.json. First host only."""
import json
import os

import numpy as np


def _plain(value):
  if isinstance(value, (np.floating, np.integer)):
    return value.item()
  if isinstance(value, np.ndarray):
    return value.tolist()
  return value


def write_json_atomic(path: str, obj) -> None:
  tmp = f'{path}.tmp'
  with open(tmp, 'w') as f:
    json.dump(obj, f, indent=2, sort_keys=True, default=_plain)
    f.write('\n')
  os.replace(tmp, path)


class MetricWriter:
  """One JSON line per logged (step, split), mirrored to TensorBoard as split/name."""

  def __init__(self, workdir: str, enabled: bool = True):
    self.enabled = enabled
    self.path = os.path.join(workdir, 'metrics.jsonl')
    self._tb = None
    if enabled:
      from tensorboardX import SummaryWriter  # pylint: disable=import-outside-toplevel
      self._tb = SummaryWriter(os.path.join(workdir, 'tensorboard'))
      self._file = open(self.path, 'a')

  def write(self, step: int, split: str, metrics: dict, epoch: float | None = None) -> None:
    if not self.enabled:
      return
    record = {'step': int(step), 'split': split}
    if epoch is not None:
      record['epoch'] = round(float(epoch), 6)
    record.update({k: _plain(v) for k, v in metrics.items()})
    self._file.write(json.dumps(record) + '\n')
    self._file.flush()
    for name, value in metrics.items():
      self._tb.add_scalar(f'{split}/{name}', float(value), int(step))

  def close(self) -> None:
    if self.enabled and not self._file.closed:
      self._file.close()
      self._tb.close()


def read_metrics(path: str) -> list[dict]:
  """Records of metrics.jsonl; after a resume, the latest record of each (split, step) wins."""
  if not os.path.exists(path):
    return []
  latest = {}
  with open(path) as f:
    for line in f:
      line = line.strip()
      if line:
        record = json.loads(line)
        latest[(record['split'], record['step'])] = record
  return sorted(latest.values(), key=lambda r: (r['step'], r['split']))
