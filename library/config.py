"""The loop's config schema, and its checks; a task's own settings are its own.

Each experiment's `get_config(arg)` starts from `default_config(task)` and changes values; it
never adds keys, so a typo in a config file or in an override (`--config.optimizer.lerning_rate`)
is an error instead of a silently ignored value. Nothing derived is computed here: epochs become
steps in the loop, from the dataset actually loaded.

The keys here are the loop's own: seed, durations and cadences, batch sizes, the model and its
start, dispatch. Each other section has an owner that gives its keys with their defaults, checks
them and says which of them may change on resume (SECTIONS): the data pipeline and the
evaluators (only for a task that loads a dataset), the optimizer, checkpoints, callbacks,
members. `task_config` is the
task's section: its keys and defaults come from the task module (`default_task_config()`), and
the task's own `validate_task_config(config)` checks them (an unknown key there is also a
one-line error). This file imports no other module of the library but its errors, and knows
no family.
"""
import importlib
import json
import math
from typing import Any

import ml_collections
from ml_collections import config_dict

from library.errors import UserError

BACKENDS = ('cpu', 'gpu', 'tpu')

# The sections besides the loop's own keys, each defined and checked by its owner: a module with
# default_config(), validate(config) and RESUME_SAFE (the section's keys that may differ between
# a run and its resume), and NEEDS_DATASET when only a task that loads a dataset has the section.
# Found by import path, as the task is: this file imports none of them.
SECTIONS = {
    'data': 'library.data.settings',     # only for a task that loads a dataset (has load_data)
    'optimizer': 'library.optimizers',
    'checkpoint': 'library.checkpoints',
    'callbacks': 'library.callbacks',    # Keras 3's, at every evaluation
    'members': 'library.members',        # folds, seeds, values as one state
    'evaluators': 'library.evaluators',  # metrics over a whole split, from the predictions
}

# The loop's own keys that may differ between a run and its resume without making the
# checkpoints another model's: how long to train, how often to log and evaluate, how the steps
# are dispatched and shown. Every other key must match (resume_mismatches).
RESUME_SAFE = frozenset({
    'num_epochs', 'num_train_steps', 'log_every_steps', 'eval_every_steps', 'eval_every_epochs',
    'eval_batch_size', 'progress_bar', 'compilation_cache_dir',
    'steps_per_dispatch.cpu', 'steps_per_dispatch.gpu', 'steps_per_dispatch.tpu',
})


def section_owner(name: str):
  """The module that defines and checks config section `name` (SECTIONS)."""
  return importlib.import_module(SECTIONS[name])


def resume_safe_keys() -> frozenset[str]:
  """Every key, 'section.key' for a section's, that may change on resume."""
  return RESUME_SAFE | {f'{name}.{key}' for name in SECTIONS
                        for key in section_owner(name).RESUME_SAFE}


def task_module(name: str):
  """The module a config's `task` names (a plain import, no registry)."""
  try:
    module = importlib.import_module(name)
  except ModuleNotFoundError as e:
    raise UserError(f'task={name!r} cannot be imported ({e})') from None
  if not hasattr(module, 'make_task'):
    raise UserError(f'task={name!r} has no make_task(config, data, total_steps)')
  return module


def task_defaults(name: str) -> ml_collections.ConfigDict:
  """The task's own section with its defaults (empty when the task has no settings)."""
  make = getattr(task_module(name), 'default_task_config', None)
  return make() if make is not None else ml_collections.ConfigDict()


def default_config(task: str = 'library.supervised') -> ml_collections.ConfigDict:
  """Every key a config may set, with its default; `task_config` holds the task's own."""
  c = ml_collections.ConfigDict()
  c.seed = 0

  # What is trained: a module exposing make_task(config, data, total_steps) -> Task
  # (library/task.py), and that task's settings.
  c.task = task
  c.task_config = task_defaults(task)
  # The model of a one-model task: a linen Module class found by plain import; `kwargs` go to
  # its constructor. Tasks with several models name them in task_config.
  c.model = ml_collections.ConfigDict()
  c.model.module = config_dict.placeholder(str)
  c.model.name = config_dict.placeholder(str)
  c.model.kwargs = ml_collections.ConfigDict()


  # Start from pretrained values (transfer learning, book 5.3): `path` is a folder written by
  # scripts.convert_weights, a .safetensors / Keras .h5 / .keras file, or a training workdir of
  # ours (its latest checkpoint). They go under `prefix` ('conv_base'); layer paths matching
  # `skip` (a regular expression, e.g. 'predictions' or 'Dense_1') are neither read nor
  # required, and keep their fresh initialization.
  c.model_init = ml_collections.ConfigDict({'path': '', 'prefix': '', 'skip': ''})

  c.batch_size = 128                # global batch, over all devices of all hosts
  c.eval_batch_size = 1000
  # How long to train: num_train_steps if set (it wins, so that --config.num_train_steps=N
  # works on an epoch-based config), else num_epochs of the training split actually loaded.
  c.num_epochs = config_dict.placeholder(float)
  c.num_train_steps = config_dict.placeholder(int)
  # Steps per dispatch (one lax.scan over a chunk), per backend. Chosen by measurement: see
  # each config's docstring and scripts/benchmark.py.
  c.steps_per_dispatch = ml_collections.ConfigDict({'cpu': 1, 'gpu': 1, 'tpu': 1})
  c.eval_every_epochs = config_dict.placeholder(float)  # default: every epoch
  c.eval_every_steps = config_dict.placeholder(int)
  c.log_every_steps = config_dict.placeholder(int)      # default: with every evaluation

  # The sections of their owners (SECTIONS). `data`, where examples come from, and
  # `evaluators` only for a task that loads a dataset (its module has load_data): a task that
  # makes its own inputs on the device has neither.
  loads_data = hasattr(task_module(task), 'load_data')
  for name in SECTIONS:
    owner = section_owner(name)
    if loads_data or not getattr(owner, 'NEEDS_DATASET', False):
      c[name] = owner.default_config()

  c.progress_bar = True
  # JAX's persistent compilation cache: a rerun skips compilation. '' turns it off.
  c.compilation_cache_dir = '~/.cache/dlwr_jax/xla'
  return c


# Constructor arguments and named evaluators: any keys, not checked against the defaults.
FREE_FORM = ('model.kwargs', 'data.features.kwargs', 'data.generator_kwargs', 'evaluators')


def flat_keys(d: Any, prefix: str = '', free_form=FREE_FORM) -> dict[str, Any]:
  """'section.key' -> value; a free-form or empty section is one key (`evaluators = {}`)."""
  out = {}
  for key, value in d.items():
    name = f'{prefix}{key}'
    if (isinstance(value, (dict, ml_collections.ConfigDict)) and name not in free_form
        and len(value)):
      out.update(flat_keys(value, name + '.', free_form))
    else:
      out[name] = value
  return out


def check_known_keys(section, defaults, prefix: str, free_form=()) -> None:
  """An unknown key of `section` (one `defaults` lacks) is a UserError naming it."""
  known = set(flat_keys(defaults, prefix, free_form))
  unknown = sorted(set(flat_keys(section, prefix, free_form)) - known)
  if unknown:
    close = sorted(k for k in known if k.rsplit('.', 1)[-1] == unknown[0].rsplit('.', 1)[-1])
    raise UserError(f'unknown config key {unknown[0]!r}'
                    f'{"; did you mean " + close[0] + "?" if close else ""}')


def one_of(key: str, value, allowed) -> None:
  if value not in allowed:
    raise UserError(f'{key}={value!r} is not one of {", ".join(map(str, allowed))}')


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises UserError naming the first bad key or value and what is allowed: the loop's keys
  here, then the task's section by the task's own validate_task_config."""
  module = task_module(config.task)
  # The task's section is one opaque key here; the task checks inside it.
  check_known_keys(config, default_config(config.task), '', FREE_FORM + ('task_config',))
  if 'task_config' not in config:
    raise UserError('the config has no task_config section; start it from '
                    'library.config.default_config(task)')
  if hasattr(module, 'validate_task_config'):
    module.validate_task_config(config)
  else:
    check_known_keys(config.task_config, task_defaults(config.task), 'task_config.')
  _validate_loop(config)


def _validate_loop(config) -> None:
  """The loop's own keys, then each section by its owner."""
  if config.num_epochs is None and config.num_train_steps is None:
    raise UserError('set num_epochs or num_train_steps')
  for key in ('num_epochs', 'eval_every_epochs'):   # None: not set
    if config[key] is not None and not (math.isfinite(config[key]) and config[key] > 0):
      raise UserError(f'{key}={config[key]} must be a finite number > 0')
  for key in ('num_train_steps', 'eval_every_steps'):
    if config[key] is not None and config[key] < 1:
      raise UserError(f'{key}={config[key]} must be a whole number >= 1')
  if not 0 <= config.seed < 2**32:
    raise UserError(f'seed={config.seed} must be a whole number from 0 to 2**32 - 1')
  for key in ('batch_size', 'eval_batch_size'):
    if config[key] < 1:
      raise UserError(f'{key}={config[key]} must be >= 1')
  if (config.model_init.prefix or config.model_init.skip) and not config.model_init.path:
    raise UserError('model_init.prefix/skip are set but model_init.path is empty')
  for backend in BACKENDS:
    if config.steps_per_dispatch[backend] < 1:
      raise UserError(f'steps_per_dispatch.{backend} must be >= 1')
  for name in SECTIONS:
    if name in config:
      section_owner(name).validate(config)


def _literal(text: str):
  if text.lower() in ('true', 'false'):
    return text.lower() == 'true'
  for kind in (int, float):
    try:
      return kind(text)
    except ValueError:
      pass
  return text


def apply_override(config: ml_collections.ConfigDict, assignment: str) -> None:
  """'key=value' (the scripts' --set), the value parsed as the key's current type; a new key of
  model.kwargs or evaluators takes an int, float, boolean or string as written."""
  key, sep, text = assignment.partition('=')
  *parents, name = key.split('.')
  node = config
  try:
    for part in parents:
      node = node[part]
    if sep and '.'.join(parents) in ('model.kwargs', 'evaluators') and name not in node:
      node[name] = _literal(text)   # a constructor argument, or an evaluator, not in the config
      return
    current = node[name]
  except (KeyError, AttributeError):
    raise UserError(f'--set {key!r} is not a config key') from None
  field = node.get_ref(name) if hasattr(node, 'get_ref') else None
  kind = field.get_type() if field is not None else type(current)
  if not sep:
    raise UserError(f'--set {assignment!r} must be key=value')
  try:
    if kind is bool:
      value = {'true': True, 'false': False}[text.lower()]
    elif kind in (tuple, list):
      value = tuple(type(current[0])(v) if current else v for v in text.split(',') if v)
    else:
      value = kind(text)
  except (KeyError, ValueError, TypeError):
    raise UserError(f'--set {key}={text!r} is not a {kind.__name__}') from None
  node[name] = value


def with_section(config: ml_collections.ConfigDict, name: str,
                 section: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A copy of `config` whose section `name` is `section`: what a task hands to another's
  functions (text generation gives the supervised task its own keys and the model's size)."""
  copy = config.copy_and_resolve_references()
  copy.unlock()
  copy[name] = section
  return copy


def to_json(config: ml_collections.ConfigDict) -> str:
  return json.dumps(config.to_dict(), indent=2, sort_keys=True, default=list)


def _assign(node: ml_collections.ConfigDict, loaded: dict) -> None:
  """Values of a saved config into a default one; a key the defaults lack is free-form
  (constructor arguments) and is taken as saved."""
  for key, value in loaded.items():
    current = node.get(key) if key in node else None
    if isinstance(value, dict):
      if isinstance(current, ml_collections.ConfigDict) and current:
        _assign(current, value)
      else:
        node[key] = ml_collections.ConfigDict(value)
    else:
      node[key] = tuple(value) if isinstance(value, list) else value


def from_json(text: str, where: str = 'config.json') -> ml_collections.ConfigDict:
  """The config a workdir was trained with, back from its config.json (`where`, for the
  error: a file that is not such a config, damaged or edited, is a UserError)."""

  def damaged(reason):
    return UserError(f'{where} is not a config this codebase wrote ({reason}): it was '
                     'damaged or edited; train the run again (scripts.train with '
                     '--start_over moves the old run aside)')

  try:
    loaded = json.loads(text)
  except ValueError as e:
    raise damaged(f'not JSON: {e}') from None
  if not isinstance(loaded, dict) or not {'task', 'model'} <= set(loaded):
    raise damaged('no task and model keys')
  try:
    config = default_config(loaded['task'])
    config.unlock()
    _assign(config, _without_unused_sections(loaded, config))
  except UserError as e:
    raise damaged(str(e)) from None
  except (TypeError, ValueError, KeyError, AttributeError, ImportError) as e:
    raise damaged(f'{type(e).__name__}: {e}') from None
  return config


def _without_unused_sections(loaded: dict, config: ml_collections.ConfigDict) -> dict:
  """A saved config without the sections its task has no use for: the data keys that a task
  without a dataset carried, unused, in a config.json written before it lost them."""
  return {k: v for k, v in loaded.items() if k in config or k not in SECTIONS}


def resume_mismatches(saved_json: str, config: ml_collections.ConfigDict) -> list[str]:
  """Keys whose values make a workdir's checkpoints belong to another experiment. A key the
  saved config lacks (added to the codebase since) is no mismatch while it keeps its default:
  the old run computed what that default computes."""
  saved = flat_keys(_without_unused_sections(json.loads(saved_json), config))
  now = flat_keys(json.loads(to_json(config)))
  defaults = flat_keys(json.loads(to_json(default_config(config.task))))
  safe = resume_safe_keys()
  return sorted(k for k in set(saved) | set(now)
                if k not in safe and saved.get(k) != now.get(k)
                and not (k not in saved and k in defaults and now.get(k) == defaults[k]))
