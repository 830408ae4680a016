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


def write_artifacts(workdir: str, step: int, artifacts: dict,
                    directory: str | None = None) -> list[str]:
  """A task's artifacts of one evaluation: text as .txt, uint8 (H, W[, C]) images as .png,
  in workdir/artifacts (or `directory`) as <name>-step<step>, each written whole (a temporary
  file renamed). Returns the paths written."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  directory = directory or os.path.join(workdir, 'artifacts')
  os.makedirs(directory, exist_ok=True)
  written = []
  for name, value in artifacts.items():
    stem = os.path.join(directory, f'{name}-step{step}')
    if isinstance(value, str):
      with open(stem + '.txt.tmp', 'w') as f:
        f.write(value)
      os.replace(stem + '.txt.tmp', stem + '.txt')
    else:
      image = np.asarray(value)
      if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f'artifact {name!r} must be text or a uint8 (H, W[, C]) image, got '
                         f'{image.dtype} {image.shape}')
      Image.fromarray(image.squeeze(-1) if image.ndim == 3 and image.shape[-1] == 1
                      else image).save(stem + '.png.tmp', format='PNG')
      os.replace(stem + '.png.tmp', stem + '.png')
    written.append(stem + ('.txt' if isinstance(value, str) else '.png'))
  return written


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
