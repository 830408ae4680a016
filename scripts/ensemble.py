"""Averages the predictions of several trained runs and scores the ensemble against each one.

  python -m scripts.ensemble --workdirs=/tmp/a,/tmp/b,/tmp/c --split=test --fit_weights

Book 7.3.3: every workdir is a run of scripts.train on the same data; the ensemble averages
their predicted probabilities (or values) with equal weights, or with weights fitted on the
validation split (--fit_weights). Prints a row per member and the ensemble's; --output writes
them as JSON.
"""
import json

from absl import flags

from library import cli

_WORKDIRS = flags.DEFINE_list('workdirs', None, 'the trained runs, comma-separated')
_SPLIT = flags.DEFINE_string('split', 'test', 'the split scored')
_FIT = flags.DEFINE_bool('fit_weights', False, 'fit the weights on the validation split')
_OUTPUT = flags.DEFINE_string('output', '', 'also write the table here (JSON)')
flags.mark_flags_as_required(['workdirs'])


def main(_):
  from library import ensemble, writers  # pylint: disable=import-outside-toplevel
  result = ensemble.ensemble(_WORKDIRS.value, _SPLIT.value, _FIT.value)
  for row in result['members']:
    print(json.dumps(row))
  print(json.dumps({'ensemble': result['ensemble'], 'weights': result['weights']}))
  if _OUTPUT.value:
    writers.write_json_atomic(_OUTPUT.value, result)


if __name__ == '__main__':
  cli.run(main)
