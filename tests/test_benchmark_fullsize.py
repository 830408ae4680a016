"""scripts/benchmark_fullsize.py's machinery on tiny stand-ins (the full-size runs are by hand:
README's "The book's configs at full size")."""
import json
import math
import subprocess
import sys

import numpy as np

from tests.conftest import ROOT, run_script


def test_smoke_run_measures_both_sides_on_the_standins_it_writes(tmp_path):
  root, out = tmp_path / 'home', tmp_path / 'rows.json'
  proc = run_script('scripts.benchmark_fullsize', f'--root={root}', '--smoke', '--only=2.1',
                    '--only=3.5', f'--output={out}', timeout=400)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert (root / '.keras' / 'datasets' / 'mnist.npz').exists()     # written first, as a user's
  rows = json.loads(out.read_text())
  assert [r['section'] for r in rows] == ['2.1', '3.5']
  for row in rows:
    for side in ('ours', 'keras'):
      for key in ('load_s', 'first_s', 'wait_s', 'peak_mb'):
        assert math.isfinite(row[f'{side}_{key}']) and row[f'{side}_{key}'] > 0, (row, key)
    assert row['ours_wait_s'] > row['ours_load_s'] + row['ours_first_s']
    assert 200 < row['ours_peak_mb'] < 8000 and 200 < row['keras_peak_mb'] < 8000, row
  assert '| 3.5 | `mlp/reuters_final.py` | 2 |' in proc.stdout      # the README's table


def test_unknown_section_and_bad_repeats_are_one_line_errors(tmp_path):
  for flag, words in (('--only=9.9', "unknown section '9.9'"), ('--repeats=0', '--repeats=0')):
    proc = run_script('scripts.benchmark_fullsize', f'--root={tmp_path}', flag, timeout=120)
    assert proc.returncode != 0 and words in proc.stderr, proc.stderr[-2000:]
    assert 'Traceback' not in proc.stderr
  assert not any(tmp_path.iterdir())          # refused before anything is written


def test_peak_memory_is_the_timed_process_own_not_its_parents():
  """Linux carries ru_maxrss over exec: a child started by a parent that peaked at 600 MB more
  would report the parent's peak. VmHWM is the child's own."""
  ballast = np.ones(600 * 2**20 // 8)       # 600 MB in this (the parent) process
  code = 'from scripts.benchmark_fullsize import _peak_mb; print(_peak_mb())'
  child = float(subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout.split()[-1])
  with open('/proc/self/status') as f:
    parent = next(int(l.split()[1]) / 1024 for l in f if l.startswith('VmHWM:'))
  assert ballast.sum() > 0 and child < parent - 400, (child, parent)
