"""The book's experiments as scripts/reproduce.py runs them: each one's command, the book's
result, how to read ours from its workdir, its smoke form, what data it needs, its Keras twin;
and the report's table (README.md's results table between its `reproduce` markers).
"""
import dataclasses
import json
import os
import platform
import re
import subprocess
import sys
import time
from typing import Callable

from library.errors import UserError

BEGIN, END = '<!-- reproduce:begin -->', '<!-- reproduce:end -->'
HOME = os.path.expanduser('~')


@dataclasses.dataclass(frozen=True)
class Experiment:
  id: str
  section: str                 # the book's section, or what the course adds
  what: str                    # the experiment, in a few words
  book: str                    # the book's result (configs/BOOK_RESULTS.md)
  commands: tuple              # argument lists of `python -m`; {w}: this experiment's workdir
  read: Callable               # workdir -> (our result as text, {name: number})
  smoke: tuple = ()            # the commands with smoke settings (default: `commands` with
                               # each config's `smoke` variant, their duration overrides dropped)
  needs: tuple = ()            # what the run reads: registry entries (library/data/fetch.py),
                               # fetched first when missing; `imagenet:<name>` weights, fetched
                               # and converted; or paths that must exist. Else skipped, saying why
  keras: str = ''              # scripts/benchmark.py's entry of the Keras twin
  env: tuple = ()              # (name, value) for the processes


def _results(workdir: str, name: str = 'results.json') -> dict:
  with open(os.path.join(workdir, name)) as f:
    return json.load(f)


def _spread(results: dict, key: str, fmt: str = '{:.3f}') -> tuple[str, float, float]:
  mean, std = results['mean'][key], results['std'][key]
  return f'{fmt.format(mean)} +/- {fmt.format(std)} ({results["num_members"]} seeds)', mean, std


def _seeds_metric(split: str, metric: str, label: str, fmt: str = '{:.3f}'):
  def read(w):
    text, mean, std = _spread(_results(w), f'{split}_{metric}', fmt)
    return f'{label} {text}', {f'{split}_{metric}': mean, f'{split}_{metric}_std': std}
  return read


def _metric(split: str, metric: str, label: str, fmt: str = '{:.3f}', extra=None):
  def read(w):
    r = _results(w)
    value = r[split][metric]
    text = f'{label} {fmt.format(value)}'
    if extra:
      text += extra(r)
    return text, {f'{split}_{metric}': value}
  return read


def _kfold(w):
  r = _results(w)
  folds = ' / '.join(f'{m["val_mae"]:.2f}' for m in r['members'])
  return (f'mean validation MAE {r["mean"]["val_mae"]:.2f} (folds {folds})',
          {'val_mae': r['mean']['val_mae']})


def _kfold_500(w):
  r = _results(w)
  best = r['best_epoch_of_mean']['mae']
  return (f'member-mean validation MAE best at epoch {best}; final mean {r["mean"]["val_mae"]:.2f}',
          {'best_epoch': best, 'val_mae': r['mean']['val_mae']})


def _transfer(w):
  r = _results(w)['recipes']
  parts = [f'{name} {r[key]["test_accuracy_mean"]:.3f} +/- {r[key]["test_accuracy_std"]:.3f}'
           for key, name in (('frozen', 'frozen base'), ('finetune', 'fine-tuned'),
                             ('scratch', 'from scratch'))]
  return 'test acc: ' + ', '.join(parts), {k: v['test_accuracy_mean'] for k, v in r.items()}


def _co2(w):
  r = _results(w)['test']
  return (f'test MAE {r["mae"]:.3f} vs common-sense baseline {r["baseline_mae"]:.3f}',
          {'test_mae': r['mae'], 'baseline_mae': r['baseline_mae']})


def _co2_callbacks(w):
  r = _results(w)
  return (f'test MAE {r["test"]["mae"]:.3f} (weights of step {r["weights_from_step"]}; stopped '
          f'at {r["stopped"]["step"]})', {'test_mae': r['test']['mae']})


def _text(w):
  import glob  # pylint: disable=import-outside-toplevel
  r = _results(w)
  samples = sorted(glob.glob(os.path.join(w, 'artifacts', 'samples-step*.txt')),
                   key=lambda p: int(p.rsplit('step', 1)[1][:-4]))
  shares = {}
  if samples:       # '  temperature 0.5: 92.6% of 68 words' under the 'real words' heading
    for line in open(samples[-1]).read().splitlines():
      found = re.match(r'\s+temperature ([\d.]+): ([\d.]+)% of', line)
      if found:
        shares[found.group(1)] = float(found.group(2))
  words = ' / '.join(f'{v:.1f}' for v in shares.values())
  return (f'validation loss {r["validation"]["loss"]:.3f}; real words {words}% at temperatures '
          f'{" / ".join(shares)}', {'val_loss': r['validation']['loss'], 'real_words': shares})


def _gan(w):
  from library import writers  # pylint: disable=import-outside-toplevel
  last = [r for r in writers.read_metrics(os.path.join(w, 'metrics.jsonl'))
          if r['split'] == 'train'][-1]
  return (f'at the end: d_loss {last["d_loss"]:.2f}, g_loss {last["g_loss"]:.2f} (the book\'s '
          'adversarial loss); samples in artifacts/',
          {'d_loss': last['d_loss'], 'g_loss': last['g_loss']})


def _anomaly(w):
  r = _results(w, 'anomaly.json')
  return f'test ROC AUC {r["test_roc_auc"]:.3f}', {'test_roc_auc': r['test_roc_auc']}


def _few_labels(w):
  pre = _results(os.path.join(w, 'pretrained'))
  scratch = _results(os.path.join(w, 'scratch'))
  return (f'test acc {_spread(pre, "test_accuracy")[0]} pretrained, '
          f'{_spread(scratch, "test_accuracy")[0]} from scratch',
          {'pretrained': pre['mean']['test_accuracy'],
           'scratch': scratch['mean']['test_accuracy']})


def _clusters(w):
  r = _results(os.path.join(w), 'clusters.json')
  names = sorted(k[:-4] for k in r if k.endswith('_ari'))
  text = ', '.join(f'{n}: ARI {r[n + "_ari"]:.3f} / NMI {r[n + "_nmi"]:.3f}' for n in names)
  return text, {k: v for k, v in r.items() if k.endswith(('_ari', '_nmi'))}


def _dqn(w):
  r = _results(w)
  returns = [m['val_episode_return'] for m in r['members']]
  return ('best greedy return over 100 episodes ' + ' / '.join(f'{v:.1f}' for v in returns),
          {'returns': returns})


def _competition(w):
  r = _results(w, 'scores.json')
  rows = {m['model'].split(' ')[0]: m for m in r['models']}
  ours, boost = rows['ours'], rows['hist_gradient_boosting']
  fmt = '{:.2f}' if not r['higher_is_better'] else '{:.3f}'
  return (f'{r["metric"]} out of fold {fmt.format(ours["oof"])}, test {fmt.format(ours["test"])} '
          f'(gradient boosting, same folds: {fmt.format(boost["oof"])} / '
          f'{fmt.format(boost["test"])})', {'oof': ours['oof'], 'test': ours['test']})


def _tokens(w):
  with open(os.path.join(w, 'stdout.txt')) as f:
    found = [l for l in f.read().splitlines() if l.startswith('Found')]
  return (found[0] if found else 'no "Found ... unique tokens." line'), {}


def _once(made: str, *args: str):
  """A command that makes `made` (a folder), skipped when it exists (a rerun)."""
  return ('@once', made, *args)


def _train(config: str, *extra: str):
  return ('scripts.train', f'--config={config}', '--workdir={w}', *extra)


SEEDS = ('--config.members.scheme=seeds', '--config.members.k=5')
KERAS_IMDB = 'imdb'
EXPERIMENTS = (
    Experiment('2.1', '2.1', 'dense 512 -> 10, rmsprop, 5 epochs of batch 128, offline digits',
               'test acc 0.9807 (full MNIST)',
               (_train('configs/mlp/mnist_dense.py:embedded', *SEEDS),),
               _seeds_metric('test', 'accuracy', 'test acc'),
               keras='mnist_dense'),
    Experiment('3.4', '3.4', 'IMDB reviews, 16-16-1 dense on multi-hot words',
               'test acc 0.8783', (_train('configs/mlp/imdb_final.py'),),
               _metric('test', 'accuracy', 'test acc'), needs=(KERAS_IMDB,)),
    Experiment('3.5', '3.5', 'Reuters newswires, 64-64-46 dense', 'test acc 0.7765',
               (_train('configs/mlp/reuters_final.py'),), _metric('test', 'accuracy', 'test acc'),
               needs=('reuters',)),
    Experiment('3.6-kfold', '3.6', 'Boston 64 -> 64 -> 1, 4-fold, 100 epochs of batch 1',
               'fold MAE 2.06-2.86, mean 2.36',
               (('scripts.crossval', '--config=configs/mlp/boston_kfold.py:embedded',
                 '--workdir={w}'),), _kfold, keras='boston_kfold'),
    Experiment('3.6-500', '3.6', 'the same folds, 500 epochs: where validation stops improving',
               'improvement stops near epoch 70',
               (('scripts.crossval', '--config=configs/mlp/boston_kfold_500.py:embedded',
                 '--workdir={w}'),), _kfold_500),
    Experiment('3.6-final', '3.6', 'the final model, 80 epochs of batch 16', 'test MAE 2.68',
               (_train('configs/mlp/boston_final.py:embedded', *SEEDS),),
               _seeds_metric('test', 'mae', 'test MAE', '{:.2f}')),
    Experiment('5.1', '5.1', 'convnet 32-64-64 -> 64 -> 10, rmsprop, 5 epochs of batch 64, '
               'offline digits', 'test acc 0.9901 (full MNIST)',
               (_train('configs/convnets/mnist_convnet.py:embedded'),),
               _metric('test', 'accuracy', 'test acc'),
               keras='mnist_convnet'),
    Experiment('5.2', '5.2', 'cats vs dogs, 2,000 photos, the small convnet with augmentation',
               'val acc ~0.82 with augmentation',
               (_train('configs/convnets/cats_dogs_small.py:augment'),),
               _metric('validation', 'accuracy', 'val acc'),
               needs=(f'{HOME}/cats_and_dogs_small',)),
    Experiment('5.3', '5.3', "cats vs dogs on VGG16's ImageNet base: frozen, then fine-tuned",
               'fine-tuned test acc 0.965',
               (('scripts.train', '--config=configs/transfer/cats_dogs_vgg16.py:frozen',
                 '--workdir={w}/frozen'),
                ('scripts.train', '--config=configs/transfer/cats_dogs_vgg16.py:finetune',
                 '--config.model_init.path={w}/frozen', '--workdir={w}')),
               _metric('test', 'accuracy', 'fine-tuned test acc'),
               needs=(f'{HOME}/cats_and_dogs_small', 'imagenet:vgg16_notop')),
    Experiment('5.3-offline', '5.3 method, offline', 'pretrain the 5.1 convnet on digits 0-4, '
               'learn 5-9 from 100 labelled examples, 5 seeds',
               '(5.3: fine-tuned VGG16 test acc 0.965 on cats/dogs)',
               (('scripts.transfer_demo', '--workdir={w}', '--seeds=5'),), _transfer,
               smoke=(('scripts.transfer_demo', '--workdir={w}', '--seeds=2', '--smoke'),)),
    Experiment('6.1a', '6.1', "one-hot encoding of words and characters, Keras' tokenizer",
               '"Found 9 unique tokens"', (('scripts.text_toys',),), _tokens),
    Experiment('6.2', '6.2', 'IMDB, embedding 32 -> LSTM 32', 'LSTM best val ~0.89',
               (_train('configs/recurrent/imdb_sequences.py:lstm'),),
               _metric('validation', 'accuracy', 'val acc'), needs=(KERAS_IMDB,)),
    Experiment('6.3', '6.3', 'Jena climate, GRU 32', 'baseline MAE 0.29, GRU ~0.265',
               (_train('configs/recurrent/jena.py:gru'),), _co2,
               needs=('jena_climate',)),
    Experiment('6.3-offline', '6.3 method, offline', 'weekly CO2 (statsmodels), a year '
               'predicts +4 weeks, GRU 32', 'Jena: baseline 0.29, GRU ~0.265',
               (_train('configs/recurrent/co2_forecast.py:gru'),), _co2),
    Experiment('7.2.1', '7.2.1 method, offline', 'the CO2 GRU with EarlyStopping '
               '(restore_best_weights) and ReduceLROnPlateau', '(no number printed)',
               (_train('configs/recurrent/co2_forecast.py:gru,early_stopping'),), _co2_callbacks),
    Experiment('7.1.2', '7.1.2, generated', 'two inputs (text + question) into one answer',
               '(trained on random arrays)',
               (_train('configs/functional/question_answering.py'),),
               _metric('test', 'accuracy', 'test acc')),
    Experiment('8.1', '8.1, offline', "character LSTM 128 on Python's own documentation, 6 of "
               "the book's 60 epochs", '(Nietzsche: text; 0.5 reads best)',
               (_train('configs/generative/text_lstm.py:pydoc', '--config.num_epochs=6'),), _text),
    Experiment('8.2', '8.2', "DeepDream on InceptionV3's mixed2-5 layers",
               'dreamed image; loss climbs ~3.4 -> ~10 per octave',
               (_train('configs/generative/deep_dream.py'),),
               lambda w: ('the dream of each octave in artifacts/', {}),
               needs=('imagenet:inception_v3_notop',)),
    Experiment('8.3', '8.3', 'neural style transfer on VGG19, 20 rounds of L-BFGS',
               'styled image',
               (_train('configs/generative/style_transfer.py'),),
               lambda w: ('the image of each round in artifacts/', {}),
               needs=('imagenet:vgg19_notop',)),
    Experiment('8.4', '8.4, offline digits', 'VAE, 2-d latent, rmsprop, 10 epochs of batch 16',
               'validation loss ~0.180 (full MNIST)',
               (_train('configs/generative/mnist_vae.py:embedded'),),
               _metric('test', 'loss', 'test loss')),
    Experiment('8.5', '8.5, offline digits', "the book's DCGAN at 28x28x1, narrowed to 32 "
               'filters, 2,000 iterations of batch 32', '(frogs) d_loss ~0.67, adversarial '
               '~0.68', (_train('configs/generative/cifar_frogs_gan.py:digits'),),
               _gan),
    Experiment('anomaly', '(course) anomaly detection', 'autoencoder on benign tumours scores '
               'malignant ones (breast cancer, scikit-learn)', '(no notebook in the book)',
               (('scripts.anomaly', '--config=configs/autoencoders/breast_cancer.py',
                 '--workdir={w}'),), _anomaly),
    Experiment('few-labels', '(course) few labels', "a classifier from the conv autoencoder's "
               'encoder vs from scratch, 100 labelled digits, 5 seeds as one run',
               '(no notebook in the book)',
               (('scripts.train', '--config=configs/autoencoders/digits.py:conv',
                 '--workdir={w}/autoencoder'),
                ('scripts.train', '--config=configs/autoencoders/few_labels.py:pretrained',
                 '--config.model_init.path={w}/autoencoder', '--workdir={w}/pretrained'),
                ('scripts.train', '--config=configs/autoencoders/few_labels.py',
                 '--workdir={w}/scratch')), _few_labels),
    Experiment('clustering', '(course) clustering', 'k-means on autoencoder codes against '
               'pixels, 1,000 test digits', '(no notebook in the book)',
               (('scripts.cluster', '--config=configs/autoencoders/digits.py:conv',
                 '--workdir={w}'),), _clusters),
    Experiment('dqn', '(course) deep Q-learning', 'DQN on gymnax CartPole-v1, 3 seeds as one '
               'run, environments on the device', "(CleanRL's JAX DQN: about 498)",
               (_train('configs/reinforcement/cartpole_dqn.py'),), _dqn,
               env=(('XLA_FLAGS', '--xla_force_host_platform_device_count=2'),)),
    Experiment('kaggle-boston', '(final project) Kaggle-style', 'Boston housing as a '
               'competition (405 train / 101 test rows), RMSE; 5 folds as members', "(a team's "
               'own)',
               (_once('{w}/folder', 'scripts.competition', '--make=boston', '--folder={w}/folder'),
                ('scripts.competition', '--config=configs/tabular/competition.py:boston',
                 '--folder={w}/folder', '--workdir={w}')), _competition),
    Experiment('kaggle-breast-cancer', '(final project) Kaggle-style', 'breast cancer as a '
               'competition (455 / 114 rows), ROC AUC', "(a team's own)",
               (_once('{w}/folder', 'scripts.competition', '--make=breast_cancer',
                      '--folder={w}/folder'),
                ('scripts.competition', '--config=configs/tabular/competition.py:breast_cancer',
                 '--folder={w}/folder', '--workdir={w}')), _competition),
)


def smoked(command: tuple) -> tuple:
  """`command` with its config's `smoke` variant added, and its duration overrides dropped."""
  out = []
  for arg in command:
    if arg.startswith(('--config.num_epochs=', '--config.num_train_steps=')):
      continue
    if arg.startswith('--config='):
      path, _, variant = arg[len('--config='):].partition(':')
      arg = f'--config={path}:{variant + "," if variant else ""}smoke'
    out.append(arg)
  return tuple(out)


def _display(args, env=()) -> str:
  args = args[2:] if args[0] == '@once' else args
  prefix = ''.join(f'{name}={value} ' for name, value in env)
  return prefix + 'python -m ' + ' '.join(args).replace('{w}', 'W')


def hardware_text() -> str:
  import jax  # pylint: disable=import-outside-toplevel
  device = jax.devices()[0]
  if device.platform == 'cpu':
    where = f'{os.cpu_count()}-core {platform.machine()} CPU'
  else:
    where = f'{jax.device_count()} x {device.device_kind}'
  return f'{where}, JAX {jax.__version__}'


# scripts/benchmark.py's entry -> (the key of its row holding Keras' score, how it is named)
KERAS_SCORES = {'mnist_dense': ('keras_test_accuracy', 'test acc {:.3f}'),
                'mnist_convnet': ('keras_test_accuracy', 'test acc {:.3f}'),
                'boston_kfold': ('keras_val_mae', 'mean validation MAE {:.2f}')}


def _keras_twin(name: str, workdir: str) -> str:
  import importlib.util  # pylint: disable=import-outside-toplevel
  if importlib.util.find_spec('keras') is None:
    return '(Keras 3 not installed: pip install -r requirements-benchmark.txt)'
  out = os.path.join(workdir, 'benchmark.json')
  if not os.path.exists(out):
    proc = subprocess.run([sys.executable, '-m', 'scripts.benchmark', f'--only={name}',
                           '--repeats=1', f'--output={out}'], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
      return f'(the twin failed: {(proc.stderr.strip().splitlines() or ["?"])[-1][:120]})'
  with open(out) as f:
    row = json.load(f)[0]
  key, fmt = KERAS_SCORES[name]
  return fmt.format(row[key]) + f' (Keras {row.get("keras", "3")})'


def unmet_need(needs: tuple, fetch_missing: bool) -> str:
  """'' when every need is here (registry entries and ImageNet weights fetched first when
  fetch_missing); else why not, in a few words."""
  from library import weights  # pylint: disable=import-outside-toplevel
  from library.data import fetch  # pylint: disable=import-outside-toplevel
  for need in needs:
    if need.startswith(weights.IMAGENET):
      here = os.path.exists(os.path.join(os.path.expanduser(weights.NAMED_FOLDER),
                                         need[len(weights.IMAGENET):], weights.WEIGHTS_FILE))
    elif need in fetch.REGISTRY:
      here = all(os.path.exists(t) for t in fetch.REGISTRY[need].targets())
    else:
      if not os.path.exists(need):
        return f'needs {need.replace(HOME, "~")}, which this machine does not have'
      continue
    if here:
      continue
    if not fetch_missing:
      return f'needs {need} (not fetched with smoke settings)'
    try:
      if need.startswith(weights.IMAGENET):
        weights.resolve(need)
      else:
        fetch.fetch(need)
    except UserError:
      entry = need[len(weights.IMAGENET):] if need.startswith(weights.IMAGENET) else need
      return (f'needs {need}, which could not be fetched here (no network): '
              f'python -m scripts.fetch --only {entry} where there is one')
  return ''


def run_experiment(e: Experiment, root: str, smoke: bool, keras: bool, hardware: str) -> dict:
  """One row of the report: the experiment run (or reused, or skipped with the reason)."""
  workdir = os.path.join(root, e.id + ('-smoke' if smoke else ''))
  commands = (e.smoke or tuple(smoked(c) for c in e.commands)) if smoke else e.commands
  row = {'id': e.id, 'section': e.section, 'what': e.what, 'book': e.book,
         'command': '; '.join(_display(c, e.env) for c in commands), 'hardware': hardware,
         'ours': '', 'keras': '', 'numbers': {}, 'wall_s': None, 'status': 'ran'}
  missing = unmet_need(e.needs, fetch_missing=not smoke)
  if missing:
    return dict(row, status='skipped', ours=f'skipped: {missing}')
  saved = os.path.join(workdir, 'reproduce.json')
  if os.path.exists(saved):       # a finished run: its results; its description as now
    with open(saved) as f:
      done = json.load(f)
    if done['status'] == 'ran':    # read again from its files, as the reader is now
      done['ours'], done['numbers'] = e.read(workdir)
    return dict(done, **{k: row[k] for k in ('section', 'what', 'book', 'command')})
  os.makedirs(workdir, exist_ok=True)
  env = dict(os.environ, **dict(e.env))
  start = time.perf_counter()
  with open(os.path.join(workdir, 'stdout.txt'), 'a') as out, open(
      os.path.join(workdir, 'stderr.txt'), 'a') as err:
    for command in commands:
      if command[0] == '@once':
        if os.path.exists(command[1].format(w=workdir)):
          continue
        command = command[2:]
      args = [a.format(w=workdir) for a in command]
      print(f'[{e.id}] python -m {" ".join(args)}', flush=True)
      proc = subprocess.run([sys.executable, '-m', *args], env=env, stdout=out, stderr=err,
                            check=False)
      if proc.returncode != 0:
        err.flush()
        with open(os.path.join(workdir, 'stderr.txt')) as f:
          last = ([l for l in f.read().splitlines() if l.strip()] or ['?'])[-1]
        return dict(row, status='failed', ours=f'failed (exit {proc.returncode}): {last[:160]}')
  row['wall_s'] = time.perf_counter() - start
  row['ours'], row['numbers'] = e.read(workdir)
  if keras and e.keras:
    row['keras'] = _keras_twin(e.keras, workdir)
  with open(saved, 'w') as f:
    json.dump(row, f, indent=1)
  return row


def _cell(text: str) -> str:
  return str(text).replace('|', '\\|').replace('\n', ' ')


def table(rows: list) -> str:
  """The report's table, as README.md shows it."""
  lines = ['| Book | Experiment | Book result | Ours | Keras 3, same data and protocol | '
           'Command | Hardware | Wall time |', '|---|---|---|---|---|---|---|---|']
  for r in rows:
    wall = '' if r['wall_s'] is None else f'{r["wall_s"]:.0f} s'
    lines.append('| ' + ' | '.join(_cell(x) for x in (
        r['section'], r['what'], r['book'], r['ours'], r['keras'], f'`{r["command"]}`'
        if r['status'] == 'ran' else '', r['hardware'] if r['status'] == 'ran' else '',
        wall)) + ' |')
  return '\n'.join(lines) + '\n'


def report(rows: list, smoke: bool) -> str:
  ran = [r for r in rows if r['status'] == 'ran']
  return (f'# The book reproduced{" (smoke settings: the machinery only)" if smoke else ""}\n\n'
          f'Written by `python -m scripts.reproduce` on {time.strftime("%Y-%m-%d")}: {len(ran)} '
          f'experiments ran, {len(rows) - len(ran)} were skipped or failed (the reason is in '
          'their row). Book numbers: configs/BOOK_RESULTS.md. Wall time: the whole process of '
          'each command, Python\'s start and compilation included; the Keras twin is not '
          'counted in it.\n\n' + table(rows))


def update_readme(path: str, rows: list) -> None:
  with open(path) as f:
    text = f.read()
  if BEGIN not in text or END not in text:
    raise UserError(f'{path} has no {BEGIN} ... {END} markers around its results table')
  head, rest = text.split(BEGIN, 1)
  _, tail = rest.split(END, 1)
  with open(path, 'w') as f:
    f.write(head + BEGIN + '\n' + table(rows) + END + tail)


def readme_table(path: str) -> str:
  """The table between README.md's markers."""
  try:
    with open(path) as f:
      text = f.read()
  except OSError as e:
    raise UserError(f'cannot read {path}: {e.strerror}') from None
  if BEGIN not in text or END not in text:
    raise UserError(f'{path} has no {BEGIN} ... {END} markers around its results table')
  return text.split(BEGIN, 1)[1].split(END, 1)[0].strip('\n') + '\n'


def merged(path: str, rows: list, smoke: bool) -> list:
  """Every experiment's row in EXPERIMENTS' order: those run now, and for the others (not in
  --only) the row of the report already at `path`, if it is a real one."""
  kept = {}
  if os.path.exists(path) and not smoke:
    with open(path) as f:
      saved = json.load(f)
    if not saved.get('smoke'):
      kept = {r['id']: r for r in saved['rows']}
  kept.update({r['id']: r for r in rows})
  return [kept[e.id] for e in EXPERIMENTS if e.id in kept]
