"""Errors a user can fix: reported as one line, exit code 2, nothing destroyed."""


class UserError(Exception):
  """Bad input: an unknown name, a wrong value, a dataset that is not there.

  Scripts print `error: <message>` and exit with code 2; no traceback, since the message
  already says what was wrong and what is allowed.
  """

  exit_code = 2


class TrainingDiverged(Exception):
  """The loss became NaN or Inf; the message names the step. Exit code 3."""

  exit_code = 3


class Interrupted(Exception):
  """SIGTERM or SIGINT arrived; a checkpoint was saved. The rerun of the same command resumes."""

  def __init__(self, signum: int, step: int):
    super().__init__(f'interrupted by signal {signum} at step {step}; checkpoint saved, '
                     'rerun the same command to resume')
    self.exit_code = 128 + signum
