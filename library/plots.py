"""history.png: loss and metrics per epoch, training vs validation, as Keras' plot(history).

Figures are drawn without pyplot (`figure` below, on matplotlib's Agg canvas), so that writing
a run's pictures never changes the backend of a notebook that shows them inline.
"""
import numpy as np

from library.writers import read_metrics


def figure(rows: int = 1, cols: int = 1, *, figsize=None, dpi=None, **subplots):
  """(figure, axes) as plt.subplots gives them, on an Agg canvas of its own (no pyplot).

  matplotlib is imported here, at the first figure (0.6 s on a 2-core CPU), not when the
  loop imports this module: a run's start does not wait for it."""
  # pylint: disable=import-outside-toplevel
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure
  fig = Figure(figsize=figsize, dpi=dpi)
  FigureCanvasAgg(fig)
  return fig, fig.subplots(rows, cols, **subplots)



def save(fig, out_path: str, dpi: int) -> None:
  """Writes `fig` whole: to a temporary file renamed over `out_path`, so that a kill mid-write
  leaves no half picture that a rerun would take for a written one."""
  import os  # pylint: disable=import-outside-toplevel
  partial = out_path + '.partial'
  fig.savefig(partial, dpi=dpi, format=os.path.splitext(out_path)[1][1:] or 'png')
  os.replace(partial, out_path)


_NOT_CURVES = {'step', 'split', 'epoch', 'count', 'grad_norm', 'param_norm', 'learning_rate'}


def plot_history(metrics_path: str, out_path: str) -> None:
  records = [r for r in read_metrics(metrics_path) if r['split'] in ('train', 'validation')]
  names = sorted({k for r in records for k in r if k not in _NOT_CURVES},
                 key=lambda n: (n != 'loss', n))
  if not names:
    return
  fig, axes = figure(len(names), 1, figsize=(7, 3 * len(names)), sharex=True,
                           squeeze=False)
  for ax, name in zip(axes[:, 0], names):
    for split, style in (('train', 'o-'), ('validation', 's-')):
      points = [(r.get('epoch', r['step']), r[name]) for r in records
                if r['split'] == split and name in r]
      if points:
        xs, ys = zip(*points)
        ax.plot(xs, ys, style, markersize=3, label=split)
    ax.set_ylabel(name)
    ax.grid(alpha=0.3)
    ax.legend()
  axes[-1, 0].set_xlabel('epoch' if all('epoch' in r for r in records) else 'step')
  fig.tight_layout()
  save(fig, out_path, 100)


def _smooth(values, factor: float = 0.9):
  """The book's exponential moving average (smooth_curve in 3.6)."""
  out = []
  for v in values:
    out.append(out[-1] * factor + v * (1 - factor) if out else v)
  return out


def plot_folds(history: dict, out_path: str, x: dict | None = None,
               unit: str = 'epoch') -> None:
  """curves.png: per metric, the fold-averaged training and validation curves, folds thin;
  x: each split's epochs (or steps: `unit`) of its records (default 1, 2, ...)."""
  names = [n for n in history['train'] if n not in _NOT_CURVES]
  names.sort(key=lambda n: (n != 'loss', n))
  fig, axes = figure(len(names), 1, figsize=(7, 3 * len(names)), sharex=True,
                           squeeze=False)
  for ax, name in zip(axes[:, 0], names):
    for split, color in (('train', 'tab:blue'), ('validation', 'tab:orange')):
      values = np.asarray(history[split].get(name, []))   # (epochs, folds)
      if not values.size:
        continue
      epochs = (np.asarray(x[split]) if x is not None and len(x[split]) == len(values)
                else np.arange(1, len(values) + 1))
      if values.shape[1] <= 20:
        ax.plot(epochs, values, color=color, alpha=0.25, linewidth=0.8)
      ax.plot(epochs, values.mean(1), color=color, label=f'{split} (mean of {values.shape[1]})')
    ax.set_ylabel(name)
    ax.grid(alpha=0.3)
    ax.legend()
  axes[-1, 0].set_xlabel(unit)
  fig.tight_layout()
  save(fig, out_path, 100)


def plot_mean_validation(history: dict, name: str, out_path: str, x=None,
                         unit: str = 'epoch') -> None:
  """The book's 3.6 figures: mean validation metric per evaluation, at its epoch (x), and
  smoothed without the first 10 evaluations."""
  mean = np.asarray(history['validation'][name]).mean(1)
  epochs = (np.asarray(x) if x is not None and len(x) == len(mean)
            else np.arange(1, len(mean) + 1))
  skip = 10 if len(mean) > 20 else 0
  fig, axes = figure(1, 2, figsize=(11, 3.5))
  axes[0].plot(epochs, mean)
  axes[0].set_title(f'mean validation {name} over folds')
  axes[1].plot(epochs[skip:], _smooth(mean[skip:]))
  axes[1].set_title(f'smoothed (EMA 0.9){", first 10 evaluations left out" if skip else ""}')
  for ax in axes:
    ax.set_xlabel(unit)
    ax.set_ylabel(f'validation {name}')
    ax.grid(alpha=0.3)
  fig.tight_layout()
  save(fig, out_path, 100)


def plot_runs(curves: dict, metric: str, out_path: str) -> None:
  """Validation curves of several runs on one figure (book 4.4), training curves dotted."""
  fig, ax = figure(figsize=(8, 4.5))
  for i, (run, (epochs, train, val)) in enumerate(curves.items()):
    color = f'C{i % 10}'
    ax.plot(epochs, val, 'o-', color=color, markersize=3, label=f'{run} validation')
    if train and not all(np.isnan(train)):
      ax.plot(epochs, train, ':', color=color, alpha=0.6)
  ax.set_xlabel('epoch')
  ax.set_ylabel(f'{metric} (validation solid, training dotted)')
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  save(fig, out_path, 100)


def plot_values(rows: list, key: str, metric: str, out_path: str) -> None:
  """Best and final validation `metric` against a swept value (log scale when all are > 0),
  one line per run and combination of the other values."""
  fig, ax = figure(figsize=(7, 4.5))
  groups = {}
  for r in rows:
    rest = ' '.join(t for t in r['run'].split(' ') if not t.startswith(f'{key}='))
    groups.setdefault(rest, []).append(r)
  for i, (run, group) in enumerate(groups.items()):
    group = sorted(group, key=lambda r: r[key])
    xs = [r[key] for r in group]
    label = f'{run} ' if run else ''
    ax.plot(xs, [r[f'best_val_{metric}'] for r in group], 'o-', color=f'C{i % 10}',
            label=f'{label}best validation')
    ax.plot(xs, [r[f'final_val_{metric}'] for r in group], 's:', color=f'C{i % 10}',
            label=f'{label}final validation')
  if min(r[key] for r in rows) > 0:
    ax.set_xscale('log')
  ax.set_xlabel(key)
  ax.set_ylabel(metric)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  save(fig, out_path, 100)


def plot_capacity(rows: list, metric: str, out_path: str) -> None:
  """Bias-variance: final training and validation error against the parameter count."""
  rows = sorted(rows, key=lambda r: r['params'])
  params = [r['params'] for r in rows]
  fig, ax = figure(figsize=(7, 4.5))
  ax.plot(params, [r[f'final_train_{metric}'] for r in rows], 'o-', label='training')
  ax.plot(params, [r[f'final_val_{metric}'] for r in rows], 's-', label='validation')
  best = min(rows, key=lambda r: r[f'final_val_{metric}'])
  ax.axvline(best['params'], color='gray', linestyle='--', alpha=0.6,
             label=f'best validation ({best["run"]})')
  for r in rows:
    ax.annotate(r['run'], (r['params'], r[f'final_val_{metric}']), fontsize=7,
                textcoords='offset points', xytext=(0, 5))
  ax.set_xscale('log')
  ax.set_xlabel('parameters (model capacity)')
  ax.set_ylabel(f'final {metric}')
  ax.set_title('underfitting (left) and overfitting (right)')
  ax.grid(alpha=0.3)
  ax.legend()
  fig.tight_layout()
  save(fig, out_path, 100)


def plot_bars(values: dict[str, list[float]], ylabel: str, out_path: str) -> None:
  """One bar per group (mean, std as error bar), every value as a dot on it."""
  fig, ax = figure(figsize=(6, 4))
  for i, (name, vals) in enumerate(values.items()):
    ax.bar(i, np.mean(vals), yerr=np.std(vals), color=f'C{i % 10}', alpha=0.6, capsize=4)
    ax.plot([i] * len(vals), vals, 'k.', markersize=5)
  ax.set_xticks(range(len(values)), list(values))
  ax.set_ylabel(ylabel)
  ax.grid(axis='y', alpha=0.3)
  fig.tight_layout()
  save(fig, out_path, 100)
