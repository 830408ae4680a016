"""Every config and variant loads and validates; bad keys and values are clear errors."""
import glob
import os

import pytest

from library import config as config_lib
from library.errors import UserError
from tests.conftest import ROOT

CONFIGS = sorted(os.path.relpath(p, ROOT) for p in glob.glob(f'{ROOT}/configs/*/*.py')
                 if not p.endswith('__init__.py'))


def _variants(path):
  """None, each variant the config declares, and each with smoke."""
  import importlib.util  # pylint: disable=import-outside-toplevel
  spec = importlib.util.spec_from_file_location('config_variants', os.path.join(ROOT, path))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  names = module.VARIANTS
  assert 'smoke' in names, path
  # A config of another schema (visualization) names its validator.
  validate = getattr(module, 'VALIDATE', config_lib.validate)
  return [None, *names, *(f'{v},smoke' for v in names if v != 'smoke')], validate


@pytest.mark.parametrize('path', CONFIGS)
def test_every_config_variant_validates(load_config, path):
  variants, validate = _variants(path)
  for variant in variants:
    validate(load_config(path, variant))


def test_unknown_variant_is_refused(load_config):
  with pytest.raises(UserError, match="unknown config variant 'embeded'"):
    load_config('configs/mlp/boston_kfold.py', 'embeded')
  with pytest.raises(UserError, match='choose one model'):
    load_config('configs/mlp/imdb_overfit.py', 'l1,l2')


@pytest.mark.parametrize('path', CONFIGS)
def test_every_config_docstring_has_command_book_and_our_result(path):
  doc = open(os.path.join(ROOT, path)).read().split('"""')[1]
  assert 'python -m scripts.' in doc, path
  for fragment in ('Ours',):
    assert fragment in doc, (path, fragment)
  # A book experiment states the book's result; our additions say they are not in the book.
  assert 'Book:' in doc or 'Not in the book' in doc, path
  assert 'PLACEHOLDER' not in doc


def test_unknown_key_is_refused(load_config):
  config = load_config(CONFIGS[0])
  config.unlock()
  config.optimizer.lerning_rate = 1.0
  with pytest.raises(UserError, match='optimizer.lerning_rate'):
    config_lib.validate(config)


@pytest.mark.parametrize('key,value,fragment', [
    ('optimizer.name', 'adagradx', 'sgd, momentum'),
    ('optimizer.schedule', 'step', 'constant, cosine'),
    ('task_config.loss', 'hinge', 'categorical_crossentropy'),
    ('data.source', 'kaggle', 'tfds, npz'),
    ('data.vectorize', 'tfidf', 'multi_hot'),
    ('task_config.regularization.l2', -1.0, 'must be >= 0'),
    ('data.validation', 1.5, 'fraction'),
    ('batch_size', 0, 'batch_size=0'),
    ('data.placement', 'gpu', 'auto, device, host'),
    ('optimizer.learning_rate', float('nan'), 'learning_rate=nan must be a finite number'),
    ('optimizer.learning_rate', float('inf'), 'learning_rate=inf must be a finite number'),
    ('optimizer.learning_rate', -1e-3, 'must be a finite number > 0'),
    ('num_epochs', float('nan'), 'num_epochs=nan must be a finite number > 0'),
    ('num_epochs', float('inf'), 'num_epochs=inf must be a finite number > 0'),
    ('num_epochs', 0.0, 'num_epochs=0.0 must be'),
    ('eval_every_epochs', -1.0, 'eval_every_epochs=-1.0 must be a finite number > 0'),
    ('eval_every_steps', 0, 'eval_every_steps=0 must be a whole number >= 1'),
    ('num_train_steps', -5, 'num_train_steps=-5 must be a whole number >= 1'),
    ('seed', -1, 'seed=-1 must be a whole number from 0'),
    ('seed', 2**32, 'seed=4294967296 must be'),
    ('data.validation', 1.0, 'data.validation=1.0: a fraction must be below 1'),
    ('data.test', 1, 'a fraction must be below 1'),
    ('data.validation', float('nan'), 'fraction'),
    ('members.learning_rate', (1e-3, float('nan')), 'every value must be a finite number > 0'),
])
def test_bad_values_name_what_is_allowed(load_config, key, value, fragment):
  config = load_config('configs/mlp/mnist_dense.py')
  section, _, name = key.rpartition('.')
  (config[section] if section else config)[name] = value
  with pytest.raises(UserError, match=fragment):
    config_lib.validate(config)


def test_loss_and_label_format_must_agree(load_config):
  config = load_config('configs/mlp/mnist_dense.py')
  config.data.one_hot = False
  with pytest.raises(UserError, match='one-hot'):
    config_lib.validate(config)


def test_config_json_round_trip_and_resume_safe_keys(load_config):
  config = load_config('configs/convnets/mnist_convnet.py', 'embedded')
  saved = config_lib.to_json(config)
  back = config_lib.from_json(saved)
  assert config_lib.to_json(back) == saved
  config.num_epochs = 20.0
  config.checkpoint.every_steps = 7
  assert config_lib.resume_mismatches(saved, config) == []
  config.model.kwargs.dense = (128,)
  config.optimizer.learning_rate = 0.1
  assert config_lib.resume_mismatches(saved, config) == ['model.kwargs',
                                                         'optimizer.learning_rate']


def test_each_section_is_its_owners_and_a_dataless_task_has_no_data_keys(load_config):
  """Every section comes from its owner with its checks and its resume-safe keys (a name there
  that is not one of the section's keys fails here); a task without a dataset has no data
  section, so a data key set on it is an unknown key, and its config.json written before,
  which carried the data keys unused, still loads and resumes."""
  import json  # pylint: disable=import-outside-toplevel
  supervised = config_lib.default_config('library.supervised')
  for name in config_lib.SECTIONS:
    owner = config_lib.section_owner(name)
    assert callable(owner.validate) and supervised[name] == owner.default_config()
    keys = set(config_lib.flat_keys(supervised[name], '', ()))
    assert set(owner.RESUME_SAFE) <= keys, (name, set(owner.RESUME_SAFE) - keys)
  assert {'data.path', 'members.vectorize', 'checkpoint.keep', 'num_epochs'} <= (
      config_lib.resume_safe_keys())
  config = load_config('configs/reinforcement/cartpole_dqn.py', 'smoke')
  assert 'data' not in config and 'evaluators' not in config
  with pytest.raises(UserError, match="'data.name' is not a config key"):
    config_lib.apply_override(config, 'data.name=mnist')
  old = json.loads(config_lib.to_json(config))
  old['data'] = json.loads(config_lib.to_json(supervised))['data']   # as configs were saved
  old['data']['name'] = 'cifar10'
  back = config_lib.from_json(json.dumps(old))
  assert 'data' not in back and config_lib.to_json(back) == config_lib.to_json(config)
  assert config_lib.resume_mismatches(json.dumps(old), config) == []
  supervised_run = load_config('configs/mlp/mnist_dense.py')
  old = json.loads(config_lib.to_json(supervised_run))
  old['data']['name'] = 'cifar10'     # a task with a dataset keeps every data key checked
  assert config_lib.resume_mismatches(json.dumps(old), supervised_run) == ['data.name']


def test_a_key_added_since_a_run_was_saved_is_no_mismatch_at_its_default(load_config):
  import json  # pylint: disable=import-outside-toplevel
  config = load_config('configs/reinforcement/cartpole_dqn.py', 'smoke')
  saved = json.loads(config_lib.to_json(config))
  del saved['task_config']['clip_rewards'], saved['task_config']['atari']   # an older run
  assert config_lib.resume_mismatches(json.dumps(saved), config) == []
  config.task_config.clip_rewards = True
  assert config_lib.resume_mismatches(json.dumps(saved), config) == ['task_config.clip_rewards']
