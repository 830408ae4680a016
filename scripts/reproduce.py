"""The book's experiments, reproduced in one command: every one whose data is here runs, the
others are skipped with the reason, and a Markdown report is written.

  python -m scripts.reproduce                          # all of them (40 minutes on 2 cores)
  python -m scripts.reproduce --only 2.1 --only 3.6-kfold
  python -m scripts.reproduce --update_readme          # the README's results table from it

Each experiment runs the command that README.md's results table shows, as a process of its
own (its wall time is the whole process: Python's start, data, compilation, training,
evaluation), in --workdir/<experiment>. Where a run is cheap, its seeds train as members of
one run (members.scheme=seeds), and the report gives their mean and spread. Where a Keras 3
twin exists (scripts/benchmark.py: the same model, data and protocol), it runs too and its
score goes beside ours. Writes --report (Markdown: book section, book result, ours, Keras 3,
the command, hardware, wall time) and the same as JSON beside it; with --only, the other
experiments keep their rows of the report already there. --update_readme replaces the table
between README.md's `reproduce` markers with it (tests/test_reproduce.py checks that they
agree). --smoke runs every command with its smoke settings and no twin (the machinery
only; its numbers mean nothing).
"""
import os

from absl import flags

from scripts._experiments import (EXPERIMENTS, hardware_text, merged, readme_table, report,
                                 run_experiment, update_readme)
from library import cli
from library.errors import UserError

_ONLY = flags.DEFINE_multi_string('only', None, 'experiments to run (default: all); their ids')
_WORKDIR = flags.DEFINE_string('workdir', 'runs/reproduce', 'where the runs go (one folder '
                               'each; a finished one is reused)')
_REPORT = flags.DEFINE_string('report', 'configs/REPRODUCED.md', 'the Markdown report (and '
                              '.json beside it)')
_UPDATE_README = flags.DEFINE_bool('update_readme', False, "rewrite README.md's results table "
                                   'from the report')
_README = flags.DEFINE_string('readme', 'README.md', 'the README whose table --update_readme '
                              'rewrites')
_SMOKE = flags.DEFINE_bool('smoke', False, 'smoke settings, no Keras twins: the machinery only')
_KERAS = flags.DEFINE_bool('keras', True, 'run the Keras 3 twins where they exist')


def main(_):
  from library import writers  # pylint: disable=import-outside-toplevel
  ids = [e.id for e in EXPERIMENTS]
  for name in _ONLY.value or ():
    if name not in ids:
      raise UserError(f'--only={name!r} is not an experiment; they are {", ".join(ids)}')
  if _UPDATE_README.value:     # refused before anything runs
    if _SMOKE.value:
      raise UserError('--update_readme takes a real run, not --smoke numbers')
    readme_table(_README.value)
  chosen = [e for e in EXPERIMENTS if not _ONLY.value or e.id in _ONLY.value]
  hardware = hardware_text()
  rows = []
  for e in chosen:
    rows.append(run_experiment(e, _WORKDIR.value, _SMOKE.value, _KERAS.value and not
                               _SMOKE.value, hardware))
    print(f'[{e.id}] {rows[-1]["ours"]}', flush=True)
  report_path = _REPORT.value
  if _SMOKE.value and not flags.FLAGS['report'].present:   # never over the committed report
    report_path = os.path.join(_WORKDIR.value, 'report-smoke.md')
  base = os.path.splitext(report_path)[0]
  rows = merged(base + '.json', rows, _SMOKE.value)
  with open(report_path, 'w') as f:
    f.write(report(rows, _SMOKE.value))
  writers.write_json_atomic(base + '.json', {'smoke': _SMOKE.value, 'rows': rows})
  print(f'wrote {report_path} and {base}.json')
  if _UPDATE_README.value:
    update_readme(_README.value, rows)
    print(f'{_README.value}: its results table is the report\'s')


if __name__ == '__main__':
  cli.run(main)
