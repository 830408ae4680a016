"""scripts/device_check.py on the CPU: its smoke mode end to end, and its refusals."""
import json
import os

from tests.conftest import run_script

STATUSES = ('ok', 'failed', 'skipped', 'timed out')


def _strict_json(path):
  def refuse(name):
    raise ValueError(f'{name} in {path}: not strict JSON')
  with open(path) as f:
    return json.load(f, parse_constant=refuse)


def test_the_smoke_run_reports_every_step_on_the_cpu(tmp_path):
  out = tmp_path / 'report'
  proc = run_script('scripts.device_check', '--smoke', f'--output_dir={out}',
                    '--only=tests', '--only=benchmark', '--only=precision', timeout=240)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  assert sorted(os.listdir(out)) == ['logs', 'report.json', 'report.md']
  report = _strict_json(out / 'report.json')
  steps = {s['name']: s for s in report['steps']}
  assert list(steps) == ['environment', 'tests', 'benchmark', 'precision']
  for step in steps.values():
    assert step['status'] in STATUSES and step['seconds'] >= 0, step
    assert step['status'] == 'ok', step        # on this CPU, with everything installed
  env = report['environment']
  assert env['backend'] == 'cpu' and env['device_count'] == 8   # tests/conftest.py's devices
  assert report['device'].startswith('cpu x8') and report['mode'] == 'smoke' and report['ok']
  assert steps['tests']['numbers']['passed'] >= 4 and not steps['tests']['numbers'].get('failed')
  dense = steps['benchmark']['numbers']['mnist_dense']
  assert dense['ours_first_step_s'] > 0
  assert steps['benchmark']['details']['rows'][0]['steps'] > 0
  row, = steps['precision']['details']['table']
  assert row['name'] == 'mnist_dense' and row['float32_first_step_s'] > 0
  assert row['bfloat16_first_step_s'] > 0 and 0 <= row['bfloat16_test'] <= 1
  md = (out / 'report.md').read_text()
  assert md.splitlines()[0] == '# Device check: cpu x8 (cpu)'
  for name in steps:
    assert f'| {name} | ok |' in md
  assert '--set=task_config.precision=bfloat16' in md
  assert not [n for n in os.listdir(tmp_path) if n != 'report']    # no staging folder left


def test_the_standins_step_is_skipped_or_trains_its_two_configs(tmp_path):
  out = tmp_path / 'report'
  proc = run_script('scripts.device_check', '--smoke', f'--output_dir={out}', '--only=standins',
                    timeout=240)
  report = _strict_json(out / 'report.json')
  step = report['steps'][-1]
  assert step['name'] == 'standins' and step['status'] in ('ok', 'skipped'), step
  assert proc.returncode == 0, proc.stderr[-3000:]
  if step['status'] == 'skipped':
    assert step['reason'] == 'scripts/make_standins.py missing'
  else:
    rows = step['details']['rows']
    assert [r['name'] for r in rows] == ['mnist_dense', 'mnist_convnet']
    assert all(r['steps'] == 2 and r['seconds'] > 0 and 'test' in r['metrics'] for r in rows)


def test_a_non_empty_output_dir_is_refused_in_one_line(tmp_path):
  out = tmp_path / 'previous'
  out.mkdir()
  (out / 'report.md').write_text('kept')
  proc = run_script('scripts.device_check', '--smoke', f'--output_dir={out}', timeout=60)
  assert proc.returncode == 2
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith('error: ') and '--overwrite' in lines[0], lines
  assert os.listdir(out) == ['report.md'] and (out / 'report.md').read_text() == 'kept'
  assert sorted(os.listdir(tmp_path)) == ['previous']
