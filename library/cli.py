"""What every absl entry point shares: flag errors and UserErrors as one line with exit code 2."""
import difflib
import glob
import os
import sys

from absl import app, flags, logging

from library.errors import Interrupted, TrainingDiverged, UserError


def _fail(message: str, code: int):
  print(f'error: {message}', file=sys.stderr, flush=True)
  sys.exit(code)


def _unknown_config_key(argv, error) -> str | None:
  """The message for a --config.a.b=v override whose key the config lacks (ml_collections
  raises a bare KeyError('b'), possibly inside an AttributeError), or None."""
  while error is not None and not isinstance(error, KeyError):
    error = error.__cause__ or error.__context__ or (
        error.args[0] if error.args and isinstance(error.args[0], BaseException) else None)
  if error is None or not error.args:
    return None
  first, _, rest = str(error.args[0]).partition('\n')
  key, suggestion = first.strip('\'"'), ' '.join(rest.split())
  for arg in argv:
    name = arg.split('=', 1)[0]
    path = name[len('--config.'):]
    if name.startswith('--config.') and path.rsplit('.', 1)[-1] == key:
      parent = path.rsplit('.', 1)[0] if '.' in path else ''
      hint = {'model.kwargs': ' (a model argument the config leaves out can be added with '
                              'scripts.sweep or scripts.benchmark --set)',
              'evaluators': ' (add an evaluator with --evaluator=NAME=package.module.function)',
              }.get(parent, '')
      return (f'{name}: the config has no key {key!r} '
              f'{"under " + parent if parent else "at the top level"}'
              f'{". " + suggestion if suggestion else ""}{hint}')
  return None


def _config_argument(argv) -> str | None:
  for i, arg in enumerate(argv[1:], 1):
    if arg.startswith('--config='):
      return arg[len('--config='):]
    if arg == '--config' and i + 1 < len(argv):
      return argv[i + 1]
  return None


def check_config_path(value: str) -> None:
  """A one-line UserError for a --config that is not a config file, with the nearest names."""
  path = value.split(':', 1)[0]
  if os.path.isfile(path) and path.endswith('.py'):
    return
  if os.path.isdir(path):
    inside = sorted(n for n in os.listdir(path) if n.endswith('.py') and n != '__init__.py')
    some = ', '.join(os.path.join(path, n) for n in inside[:3])
    raise UserError(f'--config={value} is a folder; give one config file in it'
                    f'{" (" + some + (", ..." if len(inside) > 3 else "") + ")" if some else ""}')
  if os.path.isfile(path):
    raise UserError(f'--config={value} is not a Python config file (.py with get_config)')
  folder = os.path.dirname(path) or '.'
  if os.path.isdir(folder):
    near = [os.path.join(folder, n) for n in difflib.get_close_matches(
        os.path.basename(path), [n for n in os.listdir(folder) if n.endswith('.py')], n=1)]
  else:
    near = difflib.get_close_matches(path, glob.glob('configs/*/*.py'), n=1)
  raise UserError(f'--config={value}: no such file'
                  f'{"; did you mean " + near[0] + "?" if near else ""}')


def config_module(path: str, name: str = 'config_file'):
  """The Python module of config file `path` (checked as --config is), executed: what the
  scripts that read a config themselves (sweep, benchmark, show_config) call get_config on."""
  import importlib.util  # pylint: disable=import-outside-toplevel
  check_config_path(path)
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _help(argv) -> bool:
  """--help (-h, --helpshort): the script's docstring and its own flags, one line each."""
  if not any(a in ('--help', '-h', '--helpshort', '-?') for a in argv[1:]):
    return False
  main = sys.modules['__main__']
  print((main.__doc__ or '').strip() + '\n\nflags:')
  by_module = flags.FLAGS.flags_by_module_dict()
  own = [m for m in by_module if m in (sys.argv[0], getattr(main, '__file__', None),
                                       __name__, 'ml_collections.config_flags.config_flags')]
  seen = set()
  for module in own:
    for flag in sorted(by_module[module], key=lambda f: f.name):
      if flag.name in seen:
        continue
      seen.add(flag.name)
      default = '' if flag.default in (None, '') else f' (default: {flag.default_as_str})'
      print(f'  --{flag.name}: {" ".join(flag.help.split())}{default}')
  if 'config' in seen and flags.FLAGS['config'].flag_type() == 'config object':
    print('  --config.<key>=<value>: override one config key (scripts.show_config lists them)')
  return True


def _parse_flags(argv):
  """absl parsing, but a bad flag, config key, variant or value is one line and exit 2."""
  if _help(argv):
    sys.exit(0)
  try:
    config = _config_argument(argv) if 'config' in flags.FLAGS and (
        flags.FLAGS['config'].flag_type() == 'config object') else None
    if config is not None:
      check_config_path(config)
    return flags.FLAGS(argv)
  except UserError as e:
    _fail(str(e), 2)
  except Exception as e:  # pylint: disable=broad-except
    cause = e.__cause__ or e.__context__
    if isinstance(cause, UserError):
      _fail(str(cause), 2)
    message = _unknown_config_key(argv, e) or ' '.join(str(e).split())
    _fail(message or type(e).__name__, 2)


def run(main) -> None:
  """app.run(main) with the exit codes of library.errors and quiet hosts other than the first."""

  def guarded(argv):
    if len(argv) > 1:
      _fail(f'unexpected arguments {argv[1:]}; everything is a --flag', 2)
    # orbax logs every save at INFO through absl; the console gets the progress bar instead.
    logging.set_verbosity(logging.WARNING)
    try:
      main(argv)
    except (UserError, flags.Error) as e:     # flags.ValidationError from a script's checks
      _fail(str(e), 2)
    except TrainingDiverged as e:
      _fail(str(e), e.exit_code)
    except Interrupted as e:
      print(str(e), file=sys.stderr, flush=True)
      sys.exit(e.exit_code)
    except Exception:  # pylint: disable=broad-except
      print('error: an unexpected exception, which is a bug of this codebase: please report '
            'it with the command and the traceback below', file=sys.stderr, flush=True)
      raise

  app.run(guarded, flags_parser=_parse_flags)


def quiet_unless_main_process() -> None:
  import jax  # pylint: disable=import-outside-toplevel
  if jax.process_index() != 0:
    logging.set_verbosity(logging.ERROR)


class RunFlags:
  """--config, --workdir, --start_over and --multihost: the flags of every training script."""

  def __init__(self, workdir_help: str):
    from ml_collections import config_flags  # pylint: disable=import-outside-toplevel
    self._config = config_flags.DEFINE_config_file('config', None, 'config file[:variant]',
                                                   lock_config=True)
    self._workdir = flags.DEFINE_string('workdir', None, workdir_help)
    self._start_over = flags.DEFINE_bool(
        'start_over', False, 'move a previous run in --workdir aside and start afresh')
    self._multihost = flags.DEFINE_bool(
        'multihost', False, 'initialise jax.distributed (auto-detected on TPU pods, SLURM)')
    self._evaluators = flags.DEFINE_multi_string(
        'evaluator', [], "NAME=package.module.function: a metric over each evaluated split, "
        "from the model's predictions (library/evaluators.py); e.g. "
        'roc_auc=sklearn.metrics.roc_auc_score')
    flags.mark_flags_as_required(['config', 'workdir'])

  @property
  def config(self):
    import ml_collections  # pylint: disable=import-outside-toplevel
    config = self._config.value
    for assignment in self._evaluators.value:
      name, sep, path = assignment.partition('=')
      if not (sep and name and path) or 'evaluators' not in config:
        raise UserError(f'--evaluator={assignment!r} must be NAME=package.module.function, '
                        'for a task that loads a dataset')
      with config.unlocked():   # (a section-form evaluator of that name is replaced whole)
        config.evaluators = ml_collections.ConfigDict({**config.evaluators.to_dict(),
                                                       name: path})
    return config

  @property
  def workdir(self) -> str:
    return self._workdir.value

  @property
  def start_over(self) -> bool:
    return self._start_over.value

  def start(self) -> None:
    """jax.distributed when asked or launched on several hosts; quiet on hosts but the first."""
    from library import parallel  # pylint: disable=import-outside-toplevel
    parallel.initialize_distributed(force=self._multihost.value)
    quiet_unless_main_process()
