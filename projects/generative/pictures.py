"""Image grids of generated samples, as uint8 arrays the loop writes as PNGs (Task.artifacts)."""
import numpy as np


def tile(images_NxHxWxC, rows: int, low: float = 0.0, high: float = 1.0,
         pad: int = 0) -> np.ndarray:
  """rows x (N / rows) images in one uint8 (H', W', C) picture; values clipped to [low, high]."""
  images = np.asarray(images_NxHxWxC, np.float32)
  n, h, w, c = images.shape
  if n % rows:
    raise ValueError(f'{n} images do not fill {rows} rows')
  cols = n // rows
  scaled = np.clip((images - low) / (high - low), 0.0, 1.0)
  canvas = np.ones((rows * (h + pad) - pad, cols * (w + pad) - pad, c), np.float32)
  for i in range(n):
    r, k = divmod(i, cols)
    canvas[r * (h + pad):r * (h + pad) + h, k * (w + pad):k * (w + pad) + w] = scaled[i]
  return np.round(canvas * 255).astype(np.uint8)
