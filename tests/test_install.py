"""The install: the default requirements leave TensorFlow out, the lock agrees with the ranges,
and a TFDS config without TensorFlow Datasets is one line saying what to install."""
import os
import re
import sys

import pytest
from packaging.requirements import Requirement

from library.errors import UserError
from tests.conftest import ROOT


def _requirements(name: str) -> list[Requirement]:
  out = []
  with open(os.path.join(ROOT, name)) as f:
    for line in f:
      line = line.split('#', 1)[0].strip()
      if line and not line.startswith('-'):
        out.append(Requirement(line))
  return out


def _lock() -> dict[str, str]:
  pins = {}
  with open(os.path.join(ROOT, 'requirements-lock.txt')) as f:
    for line in f:
      if '==' in line and not line.startswith('#'):
        name, version = line.strip().split('==')
        pins[re.sub(r'[-_.]+', '-', name).lower()] = version
  return pins


def test_the_default_install_leaves_tensorflow_out_and_the_tfds_extra_adds_it():
  default = {r.name for r in _requirements('requirements.txt')}
  assert not {n for n in default if n.startswith('tensorflow')}, default
  assert {'tensorflow-datasets', 'tensorflow-cpu'} <= {r.name for r in
                                                      _requirements('requirements-tfds.txt')}


def test_every_pin_of_the_lock_is_inside_the_ranges_the_requirements_allow():
  pins = _lock()
  for name in ('requirements.txt', 'requirements-tfds.txt', 'requirements-test.txt'):
    for requirement in _requirements(name):
      if requirement.marker is not None and not requirement.marker.evaluate():
        continue
      key = re.sub(r'[-_.]+', '-', requirement.name).lower()
      assert key in pins, f'{requirement.name} of {name} is not in requirements-lock.txt'
      assert requirement.specifier.contains(pins[key], prereleases=True), (requirement, pins[key])
  # The ranges admit the JAX that Python 3.13 (Colab) gets now.
  jax = next(r for r in _requirements('requirements.txt') if r.name == 'jax')
  assert jax.specifier.contains('0.12.0') and jax.specifier.contains('0.10.2')


def test_a_tfds_source_without_tensorflow_datasets_is_one_line(monkeypatch):
  from library.data import sources  # pylint: disable=import-outside-toplevel
  monkeypatch.setitem(sys.modules, 'tensorflow_datasets', None)    # as if not installed
  with pytest.raises(UserError, match=r"data.source=tfds \('mnist'\) needs TensorFlow "
                                      r'Datasets.*pip install -r requirements-tfds.txt'):
    sources.load_tfds('mnist', ['train'], None, 'image', 'label')


def test_the_readme_links_nothing_outside_the_repository():
  text = open(os.path.join(ROOT, 'README.md')).read()
  assert not re.findall(r'\]\((?:https?:|\.\./)|`\.\./|https?://', text)
  for path in re.findall(r'`((?:configs|library|projects|scripts|tests)/[\w./-]+\.(?:py|md))`',
                         text):
    assert os.path.exists(os.path.join(ROOT, path)), path


def test_an_install_is_skipped_only_while_every_requirements_file_is_as_it_was(tmp_path,
                                                                              monkeypatch):
  """scripts/_installed.py: what _venv.sh consults before running pip."""
  import importlib.util  # pylint: disable=import-outside-toplevel
  spec = importlib.util.spec_from_file_location('installed', os.path.join(ROOT, 'scripts',
                                                                          '_installed.py'))
  installed = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(installed)
  (tmp_path / '.venv').mkdir()
  (tmp_path / 'requirements.txt').write_text('numpy\n')
  (tmp_path / 'requirements-tfds.txt').write_text('-r requirements.txt\ntensorflow-datasets\n')
  (tmp_path / 'requirements-test.txt').write_text('-r requirements-tfds.txt\npytest\n')
  monkeypatch.setattr(installed, 'ROOT', str(tmp_path))
  monkeypatch.setattr(installed, 'RECORD', str(tmp_path / '.venv' / '.installed.json'))
  assert installed.main('check', 'requirements.txt') == 1            # nothing installed yet
  installed.main('mark', 'requirements-tfds.txt')
  # What it includes counts as installed; what includes it does not.
  assert installed.main('check', 'requirements.txt') == 0
  assert installed.main('check', 'requirements-tfds.txt') == 0
  assert installed.main('check', 'requirements-test.txt') == 1
  (tmp_path / 'requirements.txt').write_text('numpy>=2\n')          # a changed file: again
  assert installed.main('check', 'requirements.txt') == 1
  assert installed.main('check', 'requirements-tfds.txt') == 1
