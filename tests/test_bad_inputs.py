"""Every script, as a student mistypes it: one table of bad inputs, each asserted the same way.

Exit code 2, exactly one line `error: ...` (the last one printed), no traceback, and every
workdir the command was pointed at unchanged byte for byte (a new one not even made). The
table names what each case must say. Cases run as real processes, like a user's command.
"""
import hashlib
import os
import shutil

import pytest

from tests.conftest import TRAINED_CONVNET, run_script, truncate_checkpoints

CONVNET = 'configs/convnets/mnist_convnet.py'
SMOKE = TRAINED_CONVNET      # the config of the {trained} workdir
KFOLD = ['--config=configs/mlp/boston_kfold.py:embedded,smoke', '--config.compilation_cache_dir=']

# (id, script, arguments, what the line must say). {trained}: a finished convnet run;
# {members}: a k-fold workdir; {broken}: the trained run with every checkpoint unreadable;
# {damaged}: the trained run with half its config.json; {truncated}: its array files cut
# to 10 bytes and no checksums;
# {new}: a workdir that must not appear; {file}: a plain file; {tmp}: a scratch folder.
CASES = [
    # train: paths
    ('config-typo', 'scripts.train', ['--config=configs/convnets/mnist_convnett.py',
                                      '--workdir={new}'], ['no such file', 'mnist_convnet.py']),
    ('config-nothing-near', 'scripts.train', ['--config=configs/mlp/zzz.py', '--workdir={new}'],
     ['--config=configs/mlp/zzz.py: no such file']),
    ('config-folder', 'scripts.train', ['--config=configs/convnets', '--workdir={new}'],
     ['is a folder', 'configs/convnets/']),
    ('config-not-python', 'scripts.train', ['--config=README.md', '--workdir={new}'],
     ['not a Python config file']),
    ('workdir-is-a-file', 'scripts.train', [*SMOKE, '--workdir={file}'],
     ['is a file, not a folder']),
    ('workdir-under-a-file', 'scripts.train', [*SMOKE, '--workdir={file}/run'],
     ['which is a file']),
    ('no-workdir', 'scripts.train', SMOKE, ['--workdir']),
    ('positional-argument', 'scripts.train', [*SMOKE, '--workdir={new}', 'extra'],
     ['unexpected arguments']),
    # train: config values against what the run computes
    ('best-metric-typo', 'scripts.train', [*SMOKE, '--workdir={new}', '--config.data.validation=0.2',
                                           '--config.checkpoint.best_metric=validation.acc'],
     ['validation.acc', 'validation.accuracy']),
    ('best-metric-split', 'scripts.train', [*SMOKE, '--workdir={new}',
                                            '--config.checkpoint.best_metric=validation.loss'],
     ["split 'validation'", 'data.validation']),
    ('monitor-typo', 'scripts.train', [*SMOKE, '--workdir={new}', '--config.data.validation=0.2',
                                       '--config.callbacks.early_stopping.monitor=validation.los',
                                       '--config.callbacks.early_stopping.mode=min'],
     ['validation.los', 'validation.loss']),
    ('key-typo', 'scripts.train', [*SMOKE, '--workdir={new}', '--config.optimizer.lerning_rate=1'],
     ["the config has no key 'lerning_rate' under optimizer"]),
    ('model-kwarg', 'scripts.train', [*SMOKE, '--workdir={new}', '--config.model.kwargs.width=3'],
     ["no key 'width' under model.kwargs", '--set']),
    ('evaluator-typo', 'scripts.train', [*SMOKE, '--workdir={new}',
                                         '--evaluator=top=sklearn.metrics.top_k_accuracy_scor'],
     ["evaluators.top='sklearn.metrics.top_k_accuracy_scor' cannot be imported"]),
    ('evaluator-form', 'scripts.train', [*SMOKE, '--workdir={new}', '--evaluator=roc_auc'],
     ["--evaluator='roc_auc' must be NAME=package.module.function"]),
    ('evaluator-key', 'scripts.train', [*SMOKE, '--workdir={new}',
                                        '--config.evaluators.top=sklearn.metrics.log_loss'],
     ["no key 'top' under evaluators", '--evaluator=NAME=package.module.function']),
    ('not-a-number', 'scripts.train', [*SMOKE, '--workdir={new}', '--config.batch_size=abc'],
     ['batch_size']),
    ('optimizer', 'scripts.train', [*SMOKE, '--workdir={new}', '--config.optimizer.name=adagradx'],
     ['adagradx', 'rmsprop']),
    ('model-name', 'scripts.train', [*SMOKE, '--workdir={new}', '--config.model.name=Nope'],
     ['Nope', 'SmallConvnet']),
    ('source', 'scripts.train', [*SMOKE, '--workdir={new}', '--config.data.source=kaggle'],
     ['kaggle', 'tfds']),
    ('batch-vs-devices', 'scripts.train', [*SMOKE, '--workdir={new}', '--config.batch_size=30'],
     ['batch_size=30', '8 devices']),
    ('negative-split', 'scripts.train', [*SMOKE, '--workdir={new}', '--config.data.validation=-3'],
     ['data.validation=-3']),
    ('variant', 'scripts.train', [f'--config={CONVNET}:bogus', '--workdir={new}'],
     ['bogus', 'embedded']),
    ('dataset-offline', 'scripts.train', [f'--config={CONVNET}:tfds,smoke', '--workdir={new}',
                                          '--config.data.data_dir={tmp}/tfds'],
     ['not prepared', 'download_and_prepare']),
    # train: the wrong kind of workdir
    ('another-config', 'scripts.train', [*SMOKE, '--workdir={trained}',
                                         '--config.optimizer.learning_rate=0.1'],
     ['different config', '--start_over']),
    # crossval and sweep
    ('crossval-config-typo', 'scripts.crossval', ['--config=configs/mlp/boston_kfol.py',
                                                  '--workdir={new}'], ['boston_kfold.py']),
    ('crossval-folds', 'scripts.crossval', [*KFOLD, '--workdir={new}', '--config.members.k=1'],
     ['members.k=1']),
    ('sweep-config', 'scripts.sweep', ['--config=configs/mlp/nope.py', '--workdir={new}'],
     ['no such file']),
    ('sweep-grid-key', 'scripts.sweep', ['--config=configs/mlp/boston_kfold.py',
                                         '--common=embedded,smoke', '--workdir={new}',
                                         '--grid=model.kwargs.nope=1,2'], ['nope']),
    # evaluate
    ('evaluate-split', 'scripts.evaluate', ['--workdir={trained}', '--split=nope'], ['nope']),
    ('evaluate-no-best', 'scripts.evaluate', ['--workdir={trained}', '--checkpoint=best'],
     ['best']),
    ('evaluate-no-step', 'scripts.evaluate', ['--workdir={trained}', '--checkpoint=99'],
     ['99', 'steps [3, 6]']),
    ('evaluate-missing', 'scripts.evaluate', ['--workdir={tmp}/missing'], ['no such folder']),
    ('evaluate-a-file', 'scripts.evaluate', ['--workdir={file}'], ['is a file']),
    ('evaluate-unreadable', 'scripts.evaluate', ['--workdir={broken}'],
     ['no readable checkpoint', 'scripts.train', '--start_over']),
    # predict
    ('predict-missing-input', 'scripts.predict', ['--workdir={trained}', '--input={tmp}/no.npy'],
     ['no such file']),
    ('predict-shape', 'scripts.predict', ['--workdir={trained}', '--input={tmp}/bad.npy'],
     ['shape (2, 5)', '28, 28, 1']),
    ('predict-scaled-twice', 'scripts.predict', ['--workdir={trained}', '--input={tmp}/unit.npy'],
     ['[0, 255]', 'scaled twice']),
    ('predict-not-an-image', 'scripts.predict', ['--workdir={trained}', '--input=README.md'],
     ['not a readable image']),
    ('predict-members', 'scripts.predict', ['--workdir={members}', '--input={tmp}/bad.npy'],
     ['members, not one model']),
    ('predict-arch-usage', 'scripts.predict', ['--arch=vgg16', '--input={tmp}/bad.npy'],
     ['give either --workdir, or --arch with --weights']),
    # convert_weights, visualize, play, generate, show_config
    ('convert-missing', 'scripts.convert_weights', ['--arch=vgg16', '--input={tmp}/no.h5',
                                                    '--output={new}'], ['no.h5']),
    ('convert-arch', 'scripts.convert_weights', ['--arch=vgg17', '--input={tmp}/no.h5',
                                                 '--output={new}'], ['vgg17']),
    ('convert-not-hdf5', 'scripts.convert_weights', ['--arch=vgg16', '--input=README.md',
                                                     '--output={new}'], ['README.md']),
    ('visualize-init', 'scripts.visualize', ['--config=configs/convnets/visualize.py:digits',
                                             '--config.init={tmp}/missing', '--output={new}'],
     ['missing']),
    ('visualize-layer', 'scripts.visualize', ['--config=configs/convnets/visualize.py:digits',
                                              '--config.init={trained}', '--output={new}',
                                              '--config.filters.count=4',
                                              '--config.gradcam.layer=conv9'], ['conv9']),
    ('play-not-dqn', 'scripts.play', ['--workdir={trained}'], ['not a DQN']),
    ('generate-no-samples', 'scripts.generate', ['--workdir={trained}'], ['no samples']),
    ('competition-name', 'scripts.competition', ['--make=titanic', '--folder={new}'],
     ["--make='titanic' is not one of boston, breast_cancer"]),
    ('competition-folder', 'scripts.competition', ['--baselines', '--folder={trained}'],
     ['no competition.json']),
    ('competition-duplicate-id', 'scripts.competition',
     ['--config=configs/tabular/competition.py:boston,smoke', '--folder={tmp}/dupes',
      '--workdir={new}'], ["appears more than once in column 'id'"]),
    ('competition-not-tabular', 'scripts.competition', ['--workdir={trained}',
                                                        '--folder={tmp}/dupes'],
     ['not of the tabular task']),
    ('show-config-typo', 'scripts.show_config', ['--config=configs/mlp/mnist_dens.py'],
     ['mnist_dense.py']),
    # every checkpoint truncated, with no checksums to tell (a workdir from before them):
    # orbax's reads fail in its threads, and nothing of theirs is printed after the line
    ('evaluate-truncated', 'scripts.evaluate', ['--workdir={truncated}'],
     ['no readable checkpoint', 'steps [6, 3]']),
    ('train-truncated', 'scripts.train', [*SMOKE, '--workdir={truncated}'],
     ['no readable checkpoint', '--start_over']),
    # a workdir whose config.json was damaged (half a file): named, for readers and training
    ('damaged-config-evaluate', 'scripts.evaluate', ['--workdir={damaged}'],
     ['{damaged}/config.json is not a config this codebase wrote', 'not JSON']),
    ('damaged-config-train', 'scripts.train', [*SMOKE, '--workdir={damaged}'],
     ['{damaged}/config.json is not a config this codebase wrote', '--start_over']),
]


def _tree(path) -> dict:
  """{relative path: sha256} of every file under path (empty when it does not exist)."""
  out = {}
  for root, _, names in os.walk(path):
    for name in names:
      full = os.path.join(root, name)
      with open(full, 'rb') as f:
        out[os.path.relpath(full, path)] = hashlib.sha256(f.read()).hexdigest()
  return out


@pytest.fixture(scope='module')
def places(tmp_path_factory, trained_convnet):
  import numpy as np  # pylint: disable=import-outside-toplevel
  root = tmp_path_factory.mktemp('places')
  trained, members = trained_convnet, root / 'members'
  proc = run_script('scripts.crossval', *KFOLD, f'--workdir={members}')
  assert proc.returncode == 0, proc.stderr[-2000:]
  broken = root / 'broken'
  shutil.copytree(trained, broken)
  for directory, _, names in os.walk(broken / 'checkpoints'):
    for name in names:
      with open(os.path.join(directory, name), 'w') as f:
        f.write('garbage')
  (root / 'file').write_text('not a folder')
  truncated = root / 'truncated'
  shutil.copytree(trained, truncated)
  truncate_checkpoints(truncated)
  damaged = root / 'damaged'
  shutil.copytree(trained, damaged)
  text = (damaged / 'config.json').read_text()
  (damaged / 'config.json').write_text(text[:len(text) // 2])
  from projects.tabular import competitions  # pylint: disable=import-outside-toplevel
  competitions.make('boston', str(root / 'dupes'))
  train = (root / 'dupes' / 'train.csv').read_text().splitlines()
  (root / 'dupes' / 'train.csv').write_text('\n'.join(train + train[-1:]) + '\n')
  np.save(root / 'bad.npy', np.zeros((2, 5), np.float32))
  np.save(root / 'unit.npy', np.random.default_rng(0).uniform(0, 1, (2, 28, 28, 1)))
  return {'trained': trained, 'members': members, 'broken': broken, 'file': root / 'file',
          'tmp': root, 'damaged': damaged, 'truncated': truncated}


@pytest.mark.parametrize('script,args,fragments', [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_a_bad_input_is_one_line_and_changes_nothing(places, tmp_path, script, args, fragments):
  fill = {**{k: str(v) for k, v in places.items()}, 'new': str(tmp_path / 'new')}
  watched = [places['trained'], places['members'], places['broken'], places['damaged'],
             places['truncated']]
  before = [_tree(p) for p in watched]
  proc = run_script(script, *(a.format(**fill) for a in args))
  lines = [l for l in proc.stderr.splitlines() if l.strip()]
  assert proc.returncode == 2 and 'Traceback' not in proc.stderr, proc.stderr[-3000:]
  assert [l for l in lines if l.startswith('error: ')] == lines[-1:], proc.stderr[-3000:]
  for fragment in fragments:
    assert fragment.format(**fill) in lines[-1], lines[-1]
  assert [_tree(p) for p in watched] == before
  assert not (tmp_path / "new").exists(), (proc.stderr[-2000:], list(os.walk(tmp_path / "new")))


def test_the_table_covers_every_script_a_user_points_at_files():
  covered = {c[1] for c in CASES}
  assert {'scripts.train', 'scripts.crossval', 'scripts.sweep', 'scripts.evaluate',
          'scripts.predict', 'scripts.convert_weights', 'scripts.visualize'} <= covered
  assert len(CASES) >= 30 and len({c[0] for c in CASES}) == len(CASES)


def test_an_unexpected_exception_says_it_is_a_bug_then_shows_its_traceback(tmp_path):
  import subprocess  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  from tests.conftest import ROOT  # pylint: disable=import-outside-toplevel
  config = tmp_path / 'broken_config.py'
  config.write_text('def get_config(arg=None):\n  return {}["no such key"]\n')
  proc = run_script('scripts.show_config', f'--config={config}')
  # A config file that raises is the user's own code: one line naming its error.
  assert proc.returncode == 2 and "'no such key'" in proc.stderr.splitlines()[-1], proc.stderr
  proc = subprocess.run([sys.executable, '-c', 'from library import cli\n'
                         'cli.run(lambda argv: {}["a bug"])'], cwd=ROOT, capture_output=True,
                        text=True, check=False)
  lines = proc.stderr.splitlines()
  assert proc.returncode == 1, proc.stderr[-2000:]
  assert lines[0].startswith('error: an unexpected exception, which is a bug'), lines[:3]
  assert lines[1].startswith('Traceback') and "KeyError: 'a bug'" in lines[-1], lines


def test_every_scripts_help_lists_its_own_flags_with_their_descriptions():
  import concurrent.futures  # pylint: disable=import-outside-toplevel
  import re  # pylint: disable=import-outside-toplevel
  from tests.conftest import ROOT  # pylint: disable=import-outside-toplevel
  scripts = sorted(n[:-3] for n in os.listdir(os.path.join(ROOT, 'scripts'))
                   if n.endswith('.py') and not n.startswith('_'))
  with concurrent.futures.ThreadPoolExecutor(4) as pool:
    helps = dict(zip(scripts, pool.map(lambda s: run_script(f'scripts.{s}', '--help'), scripts)))
  for script, proc in helps.items():
    source = open(os.path.join(ROOT, 'scripts', f'{script}.py')).read()
    own = set(re.findall(r"DEFINE_\w+\(\s*'(\w+)'", source))
    if 'RunFlags(' in source:
      own |= {'config', 'workdir', 'start_over', 'multihost'}
    assert proc.returncode == 0 and own, (script, proc.stderr[-1000:])
    first = source.split('"""')[1].strip().splitlines()[0]
    assert proc.stdout.startswith(first), (script, proc.stdout[:200])
    for name in own:
      line = next((l for l in proc.stdout.splitlines() if l.startswith(f'  --{name}: ')), None)
      assert line is not None and len(line) > len(f'  --{name}: ') + 3, (script, name)
