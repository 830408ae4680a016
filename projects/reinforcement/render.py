"""Frames of an episode as pictures, for scripts.play's GIF: CartPole drawn from its observation
(cart position, pole angle), MinAtar's 10x10 channel grids coloured per channel, Atari's
preprocessed 84x84 grayscale frames."""
import numpy as np
from PIL import Image, ImageDraw

_COLOURS = np.array([[230, 80, 60], [60, 130, 230], [250, 200, 40], [90, 190, 90],
                     [170, 90, 200], [240, 140, 40], [40, 200, 200], [140, 140, 140],
                     [220, 220, 220], [120, 60, 30]], np.uint8)


def frame(env_name: str, obs: np.ndarray, width: int = 300) -> Image.Image:
  """One RGB picture of observation `obs` of gymnax environment `env_name`."""
  if env_name == 'CartPole-v1':
    return _cartpole(obs, width)
  if env_name.endswith('-MinAtar'):
    return _grid(obs, width)
  if env_name.startswith('ALE/'):        # the newest 84x84 grayscale frame of the stack
    return Image.fromarray(np.asarray(obs)[..., -1]).convert('RGB').resize(
        (width, width), Image.NEAREST)
  from library.errors import UserError  # pylint: disable=import-outside-toplevel
  raise UserError(f'no picture for task_config.env={env_name!r}: scripts.play draws '
                  'CartPole-v1, the MinAtar games and Atari (ALE/) games')


def _cartpole(obs, width):
  height = width * 2 // 3
  image = Image.new('RGB', (width, height), (255, 255, 255))
  draw = ImageDraw.Draw(image)
  scale = width / 4.8                 # the track spans x in [-2.4, 2.4]
  ground = height * 3 // 4
  cx = width / 2 + float(obs[0]) * scale
  draw.line([(0, ground), (width, ground)], fill=(0, 0, 0), width=1)
  draw.rectangle([cx - 20, ground - 12, cx + 20, ground + 8], fill=(60, 60, 60))
  pole = 1.0 * scale                  # gymnax's pole is 2 x length 0.5
  angle = float(obs[2])
  tip = (cx + pole * np.sin(angle), ground - 12 - pole * np.cos(angle))
  draw.line([(cx, ground - 12), tip], fill=(200, 140, 80), width=6)
  return image


def _grid(obs, width):
  obs = np.asarray(obs, bool)
  rgb = np.full(obs.shape[:2] + (3,), 20, np.uint8)
  for channel in range(obs.shape[-1]):
    rgb[obs[..., channel]] = _COLOURS[channel % len(_COLOURS)]
  return Image.fromarray(rgb).resize((width, width), Image.NEAREST)
