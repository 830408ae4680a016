"""The one training loop on the real configs, shrunk: artifacts, devices, compiles, resume."""
import json
import logging
import os
import shutil

import jax
import numpy as np
import pytest

from library import inference, train
from library.errors import TrainingDiverged, UserError

DENSE = 'configs/mlp/mnist_dense.py'
CONVNET = 'configs/convnets/mnist_convnet.py'


def _params(workdir):
  state, _ = inference.load_state(str(workdir))
  return jax.tree.map(np.asarray, state.params)


def _assert_trees_equal(a, b):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(x, y)


def test_smoke_run_writes_every_artifact(load_config, tmp_path):
  config = load_config(CONVNET, 'embedded,smoke')
  config.data.validation = 200
  config.checkpoint.best_metric = 'validation.accuracy'
  results = train.train_and_evaluate(config, str(tmp_path))
  for name in ('config.json', 'metrics.jsonl', 'history.png', 'results.json', 'summary.txt',
               'data_spec.json'):
    assert (tmp_path / name).exists(), name
  assert any(n.startswith('events') for n in os.listdir(tmp_path / 'tensorboard'))
  saved = json.loads((tmp_path / 'results.json').read_text())
  assert saved['steps'] == 6 and saved['devices'] == 8
  assert set(saved['test']) == {'accuracy', 'loss'} and 0 <= saved['test']['accuracy'] <= 1
  assert saved['train_seconds'] > 0 and results['test'] == saved['test']
  lines = [json.loads(l) for l in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  train_lines = [l for l in lines if l['split'] == 'train']
  assert [l['step'] for l in train_lines] == [3, 6]
  for key in ('loss', 'accuracy', 'grad_norm', 'param_norm', 'learning_rate'):
    assert np.isfinite(train_lines[-1][key]), key
  assert [l['step'] for l in lines if l['split'] == 'validation'] == [3, 6]
  # Rerunning the finished run trains nothing and rewrites nothing.
  written = {n: (tmp_path / n).read_bytes() for n in ('results.json', 'metrics.jsonl')}
  again = train.train_and_evaluate(config, str(tmp_path))
  assert again == saved
  assert {n: (tmp_path / n).read_bytes() for n in written} == written


def test_one_run_per_workdir_and_a_removed_workdir_gets_nothing_more(tmp_path, capsys):
  from library import workdirs  # pylint: disable=import-outside-toplevel
  workdir = str(tmp_path / 'w')
  with workdirs.Lock(workdir) as held:
    with pytest.raises(UserError, match=f'in use by process {os.getpid()} on '):
      with workdirs.Lock(workdir):
        pass
    held.check()
    shutil.rmtree(workdir)              # removed under the run, and another run starts there
    with workdirs.Lock(workdir):
      with pytest.raises(UserError, match='was removed or replaced while this run held it'):
        held.check()
  # A holder that ended without releasing (its name left in the file) is taken over.
  (tmp_path / 'w' / '.lock').write_text('process 1 on elsewhere since then\n')
  with workdirs.Lock(workdir):
    pass
  assert 'process 1 on elsewhere since then, which ended' in capsys.readouterr().out
  assert (tmp_path / 'w' / '.lock').read_text() == ''
  # Refused before writing anything: a workdir the run made is not left behind.
  with pytest.raises(UserError):
    with workdirs.Lock(str(tmp_path / 'fresh' / 'run')):
      raise UserError('bad input')
  assert not (tmp_path / 'fresh').exists()
  (tmp_path / 'mine').mkdir()                    # a folder of the user's, with no lock yet
  (tmp_path / 'mine' / 'notes.txt').write_text('kept')
  with pytest.raises(UserError):
    with workdirs.Lock(str(tmp_path / 'mine')):
      raise UserError('bad input')
  assert sorted(os.listdir(tmp_path / 'mine')) == ['notes.txt']
  (tmp_path / 'mine' / 'notes.txt').unlink()
  with pytest.raises(UserError):
    with workdirs.Lock(str(tmp_path / 'mine')):
      raise UserError('bad input')
  assert (tmp_path / 'mine').is_dir() and not os.listdir(tmp_path / 'mine')   # not made here


def test_one_and_eight_devices_reach_the_same_parameters(load_config, tmp_path):
  config = load_config(DENSE, 'embedded,smoke')
  train.train_and_evaluate(config, str(tmp_path / 'one'), devices=jax.devices()[:1])
  train.train_and_evaluate(config, str(tmp_path / 'eight'), devices=jax.devices())
  one, eight = _params(tmp_path / 'one'), _params(tmp_path / 'eight')
  for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(eight)):
    np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


def test_host_fed_batches_equal_on_device_batches(load_config, tmp_path):
  config = load_config(DENSE, 'embedded,smoke')
  config.data.placement = 'device'
  train.train_and_evaluate(config, str(tmp_path / 'device'))
  config.data.placement = 'host'
  train.train_and_evaluate(config, str(tmp_path / 'host'))
  for a, b in zip(jax.tree.leaves(_params(tmp_path / 'device')),
                  jax.tree.leaves(_params(tmp_path / 'host'))):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def _count_compiles(caplog, run) -> int:
  jax.config.update('jax_log_compiles', True)
  try:
    with caplog.at_level(logging.DEBUG, logger='jax'):
      caplog.clear()
      run()
  finally:
    jax.config.update('jax_log_compiles', False)
  return sum('train_chunk' in r.getMessage() and 'Compiling' in r.getMessage()
             for r in caplog.records)


@pytest.mark.parametrize('per_dispatch,expected', [(1, 1), (2, 2)])
def test_train_step_compiles_once_not_per_step_or_epoch(load_config, tmp_path, caplog,
                                                        per_dispatch, expected):
  config = load_config(DENSE, 'embedded,smoke')
  config.steps_per_dispatch.cpu = per_dispatch
  counts = []
  for steps in (6, 15):  # 2 and 5 evaluation intervals of 3 steps
    config.num_train_steps = steps
    counts.append(_count_compiles(
        caplog, lambda: train.train_and_evaluate(config, str(tmp_path / str(steps)))))
  # One compiled chunk per distinct chunk length (3 = 2 + 1 for two steps per dispatch).
  assert counts == [expected, expected]


def test_resume_gives_bitwise_the_parameters_of_an_uninterrupted_run(load_config, tmp_path):
  config = load_config(CONVNET, 'embedded,smoke')
  config.num_train_steps = 12
  train.train_and_evaluate(config, str(tmp_path / 'straight'))
  config.num_train_steps = 6
  train.train_and_evaluate(config, str(tmp_path / 'resumed'))
  config.num_train_steps = 12
  results = train.train_and_evaluate(config, str(tmp_path / 'resumed'))
  assert results['resumed_from_step'] == 6
  _assert_trees_equal(_params(tmp_path / 'straight'), _params(tmp_path / 'resumed'))


def test_scanned_chunks_resume_bitwise_too(load_config, tmp_path):
  config = load_config(DENSE, 'embedded,smoke')
  config.steps_per_dispatch.cpu = 2
  config.num_train_steps = 12
  train.train_and_evaluate(config, str(tmp_path / 'straight'))
  config.num_train_steps = 6
  train.train_and_evaluate(config, str(tmp_path / 'resumed'))
  config.num_train_steps = 12
  train.train_and_evaluate(config, str(tmp_path / 'resumed'))
  _assert_trees_equal(_params(tmp_path / 'straight'), _params(tmp_path / 'resumed'))


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(load_config,
                                                                           tmp_path):
  config = load_config(DENSE, 'embedded,smoke')
  config.optimizer.name = 'sgd'
  config.optimizer.learning_rate = 1e9
  config.eval_every_steps = 1
  config.num_train_steps = 50
  with pytest.raises(TrainingDiverged, match=r'at step \d+') as info:
    train.train_and_evaluate(config, str(tmp_path))
  bad_step = int(str(info.value).split('at step ')[1].split()[0])
  kept = sorted(int(n) for n in os.listdir(tmp_path / 'checkpoints') if n.isdigit())
  assert kept and max(kept) <= bad_step
  state, _ = inference.load_state(str(tmp_path))
  assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state.params))
  assert f'The last good checkpoint ({max(kept)}) is kept' in str(info.value)
  config.optimizer.learning_rate = 1e30        # diverges before any checkpoint
  with pytest.raises(TrainingDiverged, match='at step 0 .*No checkpoint was saved before it'):
    train.train_and_evaluate(config, str(tmp_path / 'at_once'))


def test_a_workdir_of_another_config_is_refused_unless_starting_over(load_config, tmp_path):
  config = load_config(DENSE, 'embedded,smoke')
  train.train_and_evaluate(config, str(tmp_path))
  before = sorted(os.listdir(tmp_path / 'checkpoints'))
  config.optimizer.learning_rate = 0.5
  with pytest.raises(UserError, match='different config.*optimizer.learning_rate'):
    train.train_and_evaluate(config, str(tmp_path))
  assert sorted(os.listdir(tmp_path / 'checkpoints')) == before   # nothing destroyed
  train.train_and_evaluate(config, str(tmp_path), start_over=True)
  aside = [n for n in os.listdir(tmp_path) if n.startswith('previous-')]
  assert len(aside) == 1 and (tmp_path / aside[0] / 'checkpoints').is_dir()


def test_a_checkpoint_of_another_model_is_refused(load_config, tmp_path):
  config = load_config(DENSE, 'embedded,smoke')
  train.train_and_evaluate(config, str(tmp_path))
  os.remove(tmp_path / 'config.json')   # only the checkpoint itself can tell now
  config.model.kwargs.hidden = (48,)
  with pytest.raises(UserError, match='another model'):
    train.train_and_evaluate(config, str(tmp_path))


def test_a_corrupted_latest_checkpoint_falls_back_to_the_previous_one(load_config, tmp_path,
                                                                     caplog):
  config = load_config(DENSE, 'embedded,smoke')
  train.train_and_evaluate(config, str(tmp_path))
  latest = tmp_path / 'checkpoints' / '6' / 'state'
  for root, _, files in os.walk(latest):
    for name in files:
      if 'manifest' in name or root.endswith('/d'):
        with open(os.path.join(root, name), 'wb') as f:
          f.write(b'corrupted')
  config.num_train_steps = 9
  with caplog.at_level(logging.WARNING):
    results = train.train_and_evaluate(config, str(tmp_path))
  assert results['resumed_from_step'] == 3 and results['steps'] == 9
  assert any('falling back' in r.getMessage() for r in caplog.records)


def test_late_callbacks_onto_a_closed_event_loop_are_not_printed_and_nothing_else_is_hidden():
  import asyncio  # pylint: disable=import-outside-toplevel
  import types  # pylint: disable=import-outside-toplevel
  from library import checkpoints  # pylint: disable=import-outside-toplevel
  loop = asyncio.new_event_loop()
  loop.close()
  try:
    loop.call_soon_threadsafe(print)      # what TensorStore's callbacks do after a failed read
  except RuntimeError as e:
    closed = e
  try:
    raise RuntimeError('Event loop is closed')    # the same words from elsewhere: shown
  except RuntimeError as e:
    elsewhere = e
  seen = []
  hook = checkpoints.closed_loop_filter(seen.append)
  for error in (closed, elsewhere, ValueError('x')):
    hook(types.SimpleNamespace(exc_value=error, exc_traceback=error.__traceback__,
                               exc_type=type(error), err_msg=None, object=None))
  assert len(seen) == 2 and seen[0].exc_value is elsewhere
  assert isinstance(seen[1].exc_value, ValueError)


def test_a_half_written_checkpoint_is_ignored(load_config, tmp_path):
  config = load_config(DENSE, 'embedded,smoke')
  train.train_and_evaluate(config, str(tmp_path))
  shutil.copytree(tmp_path / 'checkpoints' / '6',
                  tmp_path / 'checkpoints' / '9.orbax-checkpoint-tmp-123')
  config.num_train_steps = 9
  assert train.train_and_evaluate(config, str(tmp_path))['resumed_from_step'] == 6


def test_batch_that_does_not_divide_by_the_devices_is_an_error(load_config, tmp_path):
  config = load_config(DENSE, 'embedded,smoke')
  config.batch_size = 30
  with pytest.raises(UserError, match='batch_size=30 does not divide by the 8 devices'):
    train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert not (tmp_path / 'run').exists()


def test_golden_first_step_loss(load_config, tmp_path):
  config = load_config(DENSE, 'embedded,smoke')
  config.num_train_steps = 1
  config.eval_every_steps = 1
  train.train_and_evaluate(config, str(tmp_path))
  first = json.loads((tmp_path / 'metrics.jsonl').read_text().splitlines()[0])
  # Update only if a change of initialisation, data order or loss is intended.
  np.testing.assert_allclose(first['loss'], GOLDEN_FIRST_LOSS, rtol=1e-4)


GOLDEN_FIRST_LOSS = 2.449011  # MLP(32) smoke, embedded digits, seed 0


@pytest.mark.parametrize('path', [DENSE, CONVNET])
def test_the_tfds_variant_trains_on_tfds_mock_data(load_config, tmp_path, path):
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  config = load_config(path, 'tfds,smoke')
  config.data.data_dir = str(tmp_path / 'tfds')
  config.data.validation = 16
  with tfds.testing.mock_data(num_examples=96):
    results = train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert results['steps'] == 6 and 0 <= results['test']['accuracy'] <= 1
  assert 'validation' in results


def test_an_unknown_tfds_name_is_an_error(load_config, tmp_path):
  config = load_config(DENSE, 'tfds,smoke')
  config.data.name = 'mnistt'
  config.data.data_dir = str(tmp_path)
  with pytest.raises(UserError, match="'mnistt' is not a TFDS dataset"):
    train.train_and_evaluate(config, str(tmp_path / 'run'))


def test_the_best_checkpoint_is_kept_beside_the_last(load_config, tmp_path):
  from library import checkpoints  # pylint: disable=import-outside-toplevel
  config = load_config(DENSE, 'embedded,smoke')
  config.data.validation = 200
  config.eval_every_steps = 1
  config.num_train_steps = 8
  config.checkpoint.keep = 1
  config.checkpoint.best_metric = 'validation.loss'
  config.checkpoint.best_mode = 'min'
  train.train_and_evaluate(config, str(tmp_path))
  losses = {r['step']: r['loss'] for r in map(json.loads, open(tmp_path / 'metrics.jsonl'))
            if r['split'] == 'validation'}
  best = min(losses, key=losses.get)
  ckpt = checkpoints.Checkpointer(str(tmp_path / 'checkpoints'), 1, 'validation.loss', 'min')
  assert ckpt.all_steps() == sorted({best, 8}) and ckpt.best_step() == best
  _, meta = inference.load_state(str(tmp_path), 'best')
  assert meta['step'] == best


def test_a_run_written_on_8_devices_restores_on_1_and_2(trained_convnet):
  from library import inference  # pylint: disable=import-outside-toplevel
  config = inference.load_config(str(trained_convnet))
  with open(os.path.join(trained_convnet, 'results.json')) as f:
    written = json.load(f)
  assert written['devices'] == 8
  for count in (1, 2):
    s = train.setup(config, devices=jax.devices()[:count])
    state, _ = inference.restore(str(trained_convnet), config, s.state, 'latest',
                                 s.hook.size)
    assert {d.id for d in jax.tree.leaves(state.params)[0].sharding.device_set} == set(
        range(count))
    np.testing.assert_allclose(s.feed.evaluate(state, 'test')['accuracy'],
                               written['test']['accuracy'], rtol=1e-6)


def test_bfloat16_compute_keeps_the_5_1_convnets_accuracy_within_half_a_point(load_config,
                                                                            tmp_path):
  """Book 5.1's convnet, its 5 epochs on the offline digits, in float32 and with bfloat16
  compute: float32 parameters and optimizer state either way, test accuracies within 0.005,
  and other numbers (the casts are applied)."""
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  results = {}
  for policy in ('float32', 'bfloat16'):
    config = load_config('configs/convnets/mnist_convnet.py', 'embedded')
    config.task_config.precision = policy
    results[policy], state, _ = train.train_and_evaluate(config, str(tmp_path / policy),
                                                         return_state=True)
    dtypes = {x.dtype for x in jax.tree.leaves((state.params, state.opt_state))
              if jnp.issubdtype(x.dtype, jnp.floating)}
    assert dtypes == {jnp.dtype(jnp.float32)}, (policy, dtypes)
  f32, bf16 = results['float32']['test'], results['bfloat16']['test']
  assert f32['accuracy'] > 0.9 and abs(bf16['accuracy'] - f32['accuracy']) <= 0.005, (f32, bf16)
  assert bf16['loss'] != f32['loss']
  config.task_config.precision = 'float16'
  with pytest.raises(UserError, match='float16.*loss scaling'):
    train.train_and_evaluate(config, str(tmp_path / 'f16'))


def test_a_long_model_summary_is_printed_a_line_per_layer_kind():
  params = {'Dense_0': {'kernel': np.zeros((120, 64)), 'bias': np.zeros(64)},
            'Dense_1': {'kernel': np.zeros((64, 1)), 'bias': np.zeros(1)},
            **{f'embed_{i}': {'embedding': np.zeros((6, 4))} for i in range(300)}}
  text = train.layer_kinds(params, 'W/summary.txt')
  lines = text.splitlines()
  assert lines[0] == (f'{120 * 64 + 64 + 65 + 300 * 24:,} parameters in 302 layers (the full '
                      'table is W/summary.txt):')
  assert lines[1].split() == ['Dense', 'x', '2', f'{120 * 64 + 64 + 65:,}', 'parameters']
  assert lines[2].split() == ['embed', 'x', '300', '7,200', 'parameters']
  # Members stacked on a leading axis: each member's parameters.
  stacked = jax.tree.map(lambda x: np.zeros((5, *x.shape)), params)
  assert train.layer_kinds(stacked, 'W', stacked=5).splitlines()[1:] == lines[1:]
