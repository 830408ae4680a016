"""scripts/reproduce.py (scripts/_experiments.py): the README's results table is its report;
its machinery runs."""
import json
import os
import re

from tests.conftest import ROOT, run_script


def test_the_readme_results_table_is_the_committed_report():
  from scripts import _experiments as reproduce  # pylint: disable=import-outside-toplevel
  with open(os.path.join(ROOT, 'configs', 'REPRODUCED.json')) as f:
    saved = json.load(f)
  assert not saved['smoke']
  assert reproduce.readme_table(os.path.join(ROOT, 'README.md')) == reproduce.table(
      saved['rows'])
  with open(os.path.join(ROOT, 'configs', 'REPRODUCED.md')) as f:
    assert reproduce.table(saved['rows']) in f.read()
  # Every experiment is in the report, run or skipped with its reason.
  assert [r['id'] for r in saved['rows']] == [e.id for e in reproduce.EXPERIMENTS]
  for row in saved['rows']:
    assert row['status'] in ('ran', 'skipped'), row
    assert row['ours'], row


def test_every_command_and_its_smoke_form_name_scripts_and_configs_that_load():
  from library import cli  # pylint: disable=import-outside-toplevel
  from scripts import _experiments as reproduce  # pylint: disable=import-outside-toplevel
  for e in reproduce.EXPERIMENTS:
    for command in e.commands + (e.smoke or tuple(reproduce.smoked(c) for c in e.commands)):
      args = command[2:] if command[0] == '@once' else command
      assert os.path.exists(os.path.join(ROOT, args[0].replace('.', '/') + '.py')), args
      for arg in args:
        found = re.match(r'--config=([^:]+):?(.*)', arg)
        if found:
          cli.config_module(os.path.join(ROOT, found.group(1))).get_config(
              found.group(2) or None)


def test_the_smoke_run_reports_what_ran_and_why_the_rest_did_not(tmp_path):
  proc = run_script('scripts.reproduce', '--smoke', '--only=6.1a', '--only=2.1', '--only=3.4',
                    f'--workdir={tmp_path / "runs"}', f'--report={tmp_path / "report.md"}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  rows = {r['id']: r for r in json.load(open(tmp_path / 'report.json'))['rows']}
  assert rows['6.1a']['ours'] == 'Found 9 unique tokens.'
  assert rows['2.1']['status'] == 'ran' and '(5 seeds)' in rows['2.1']['ours']
  assert 0 < rows['2.1']['numbers']['test_accuracy'] < 1 and rows['2.1']['wall_s'] > 0
  if not os.path.exists(os.path.expanduser('~/.keras/datasets/imdb.npz')):
    assert rows['3.4']['status'] == 'skipped' and 'needs imdb' in rows['3.4']['ours']
  text = open(tmp_path / 'report.md').read()
  assert 'smoke settings' in text and '| 2.1 |' in text
  proc = run_script('scripts.reproduce', '--only=9.9', f'--workdir={tmp_path / "runs"}')
  assert proc.returncode == 2 and proc.stderr.splitlines()[-1].startswith(
      "error: --only='9.9' is not an experiment"), proc.stderr
