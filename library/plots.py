"""history.png: loss and metrics per epoch, training vs validation, as Keras' plot(history)."""
import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=wrong-import-position

from library.writers import read_metrics  # pylint: disable=wrong-import-position

_NOT_CURVES = {'step', 'split', 'epoch', 'count', 'grad_norm', 'param_norm', 'learning_rate'}


def plot_history(metrics_path: str, out_path: str) -> None:
  records = [r for r in read_metrics(metrics_path) if r['split'] in ('train', 'validation')]
  names = sorted({k for r in records for k in r if k not in _NOT_CURVES},
                 key=lambda n: (n != 'loss', n))
  if not names:
    return
  fig, axes = plt.subplots(len(names), 1, figsize=(7, 3 * len(names)), sharex=True,
                           squeeze=False)
  for ax, name in zip(axes[:, 0], names):
    for split, style in (('train', 'o-'), ('validation', 's-')):
      points = [(r['epoch'], r[name]) for r in records if r['split'] == split and name in r]
      if points:
        xs, ys = zip(*points)
        ax.plot(xs, ys, style, markersize=3, label=split)
    ax.set_ylabel(name)
    ax.grid(alpha=0.3)
    ax.legend()
  axes[-1, 0].set_xlabel('epoch')
  fig.tight_layout()
  fig.savefig(out_path, dpi=100)
  plt.close(fig)
