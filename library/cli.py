"""What every absl entry point shares: flag errors and UserErrors as one line with exit code 2."""
import sys

from absl import app, flags, logging

from library.errors import Interrupted, TrainingDiverged, UserError


def _fail(message: str, code: int):
  print(f'error: {message}', file=sys.stderr, flush=True)
  sys.exit(code)


def _parse_flags(argv):
  """absl parsing, but a bad flag, config key, variant or value is one line and exit 2."""
  try:
    return flags.FLAGS(argv)
  except UserError as e:
    _fail(str(e), 2)
  except Exception as e:  # pylint: disable=broad-except
    cause = e.__cause__ or e.__context__
    if isinstance(cause, UserError):
      _fail(str(cause), 2)
    message = ' '.join(str(e).split())
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
    except UserError as e:
      _fail(str(e), 2)
    except TrainingDiverged as e:
      _fail(str(e), e.exit_code)
    except Interrupted as e:
      print(str(e), file=sys.stderr, flush=True)
      sys.exit(e.exit_code)

  app.run(guarded, flags_parser=_parse_flags)


def quiet_unless_main_process() -> None:
  import jax  # pylint: disable=import-outside-toplevel
  if jax.process_index() != 0:
    logging.set_verbosity(logging.ERROR)
