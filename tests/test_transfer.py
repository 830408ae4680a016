"""Pretrained networks (book 5.3): linen VGG16/19, ResNet50, InceptionV3 against Keras' own on
random weights through every file format; refusals; model_init, freezing, cached features."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from library import supervised, train, weights
from library.errors import UserError
from projects.transfer import convert, models
from tests.conftest import run_script

os.environ.setdefault('KERAS_BACKEND', 'jax')


def keras_model(arch, **kwargs):
  """keras.applications' network with random weights, batch-norm statistics made non-trivial
  (so that swapping gamma, beta, mean or variance would show)."""
  import keras  # pylint: disable=import-outside-toplevel
  names = {'vgg16': 'VGG16', 'vgg19': 'VGG19', 'resnet50': 'ResNet50',
           'inception_v3': 'InceptionV3'}
  keras.utils.set_random_seed(0)
  model = getattr(keras.applications, names[arch])(weights=None, classifier_activation=None,
                                                   **kwargs)
  rng = np.random.default_rng(0)
  for layer in model.layers:
    if isinstance(layer, keras.layers.BatchNormalization):
      new = []
      for w, var in zip(layer.get_weights(), layer.weights):
        kind = var.path.split('/')[-1]
        if kind == 'gamma':
          new.append(rng.uniform(0.3, 0.7, w.shape))
        elif kind == 'moving_variance':
          new.append(rng.uniform(1.0, 2.0, w.shape))
        else:   # beta, moving_mean
          new.append(rng.uniform(-0.2, 0.2, w.shape))
      layer.set_weights([n.astype(np.float32) for n in new])
  return model


def keras_outputs(model, x):
  with jax.numpy_rank_promotion('allow'):
    return np.asarray(model.predict(x, verbose=0))


def images(size, n=2, seed=1):
  """Inputs as the networks see them after preprocess_input (roughly centred pixels)."""
  return np.random.default_rng(seed).uniform(-120, 120, (n, size, size, 3)).astype(np.float32)


@pytest.mark.parametrize('arch,kwargs,size,fmt', [
    ('vgg16', {}, 224, 'model.h5'),                                 # the book's network, top
    ('vgg19', dict(include_top=False, input_shape=(64, 64, 3)), 64, 'weights.h5'),
    ('resnet50', dict(input_shape=(64, 64, 3)), 64, 'model.keras'),   # top: any size
    ('inception_v3', dict(input_shape=(75, 75, 3)), 75, 'model.h5'),
])
def test_converted_networks_reproduce_keras(tmp_path, arch, kwargs, size, fmt):
  import keras  # pylint: disable=import-outside-toplevel
  if arch == 'inception_v3':
    keras.layers.Conv2D(1, 1)   # Keras numbers its automatic names on: conv2d_1, ... follow
  model = keras_model(arch, **kwargs)
  path = str(tmp_path / f'{arch}.{fmt}')
  if fmt == 'weights.h5':
    model.save_weights(path)
  else:
    model.save(path)
  info = convert.convert(arch, path, str(tmp_path / 'out'))
  assert info['include_top'] == kwargs.get('include_top', True)
  x = images(size)
  ours_model, variables = convert.load(arch, str(tmp_path / 'out'))
  ours = convert.predict(ours_model, variables, x)
  theirs = keras_outputs(model, x)
  assert ours.shape == theirs.shape
  assert np.abs(ours - theirs).max() <= 1e-4, np.abs(ours - theirs).max()
  total = sum(np.prod(v.shape) for v in model.weights)
  assert info['variables'] == total     # trainable and batch-norm statistics, as Keras counts


def test_parameter_counts_equal_keras_applications():
  expected = {'vgg16': 138_357_544, 'vgg19': 143_667_240, 'resnet50': 25_583_592,
              'inception_v3': 23_817_352}   # Keras' trainable parameters
  for arch, count in expected.items():
    shapes = convert.target_shapes(models.make_base(arch), convert.INPUT_SIZE[arch])
    assert sum(np.prod(s) for k, s in shapes.items() if k.startswith('params/')) == count, arch


def test_torchvision_vgg_weights_map_onto_keras_layout(tmp_path):
  """A torchvision-layout VGG16 state dict (OIHW kernels, (out, in) linears, C,H,W flatten),
  made from a Keras model's weights, converts to the same network."""
  from safetensors.numpy import save_file  # pylint: disable=import-outside-toplevel
  model = keras_model('vgg16')
  state, index = {}, 0
  for block, count in enumerate((2, 2, 3, 3, 3), 1):
    for i in range(1, count + 1):
      kernel, bias = model.get_layer(f'block{block}_conv{i}').get_weights()
      state[f'features.{index}.weight'] = kernel.transpose(3, 2, 0, 1)
      state[f'features.{index}.bias'] = bias
      index += 2
    index += 1
  fc1, b1 = model.get_layer('fc1').get_weights()          # rows in H, W, C order
  state['classifier.0.weight'] = fc1.reshape(7, 7, 512, -1).transpose(3, 2, 0, 1).reshape(
      fc1.shape[1], -1)
  state['classifier.0.bias'] = b1
  for theirs, ours in (('classifier.3', 'fc2'), ('classifier.6', 'predictions')):
    w, b = model.get_layer(ours).get_weights()
    state[f'{theirs}.weight'], state[f'{theirs}.bias'] = w.T.copy(), b
  save_file({k: np.ascontiguousarray(v) for k, v in state.items()},
            str(tmp_path / 'vgg16.safetensors'))
  info = convert.convert('vgg16', str(tmp_path / 'vgg16.safetensors'), str(tmp_path / 'out'))
  assert info['source_format'] == 'torchvision' and info['preprocess'] == 'torch'
  x = images(224, n=1)
  ours_model, variables = convert.load('vgg16', str(tmp_path / 'out'))
  np.testing.assert_allclose(convert.predict(ours_model, variables, x), keras_outputs(model, x),
                             atol=1e-4)


def test_conversion_refuses_pickles_other_architectures_and_overwrites(tmp_path):
  (tmp_path / 'model.pt').write_bytes(b'\x80\x04 not read')
  with pytest.raises(UserError, match='pickle.*safetensors'):
    convert.convert('vgg16', str(tmp_path / 'model.pt'), str(tmp_path / 'o'))
  model = keras_model('vgg19', include_top=False, input_shape=(32, 32, 3))
  model.save(str(tmp_path / 'vgg19.h5'))
  with pytest.raises(UserError, match=r'missing .*block3_conv4|extra .*block3_conv4'):
    convert.convert('vgg16', str(tmp_path / 'vgg19.h5'), str(tmp_path / 'o'))
  with pytest.raises(UserError, match='missing.*conv1_bn.*extra.*block1_conv1'):
    convert.convert('resnet50', str(tmp_path / 'vgg19.h5'), str(tmp_path / 'o'))
  assert not os.path.exists(tmp_path / 'o')                # nothing half-written
  convert.convert('vgg19', str(tmp_path / 'vgg19.h5'), str(tmp_path / 'o'))
  before = (tmp_path / 'o' / 'weights.safetensors').stat().st_mtime_ns
  with pytest.raises(UserError, match='already holds'):
    convert.convert('vgg19', str(tmp_path / 'vgg19.h5'), str(tmp_path / 'o'))
  assert (tmp_path / 'o' / 'weights.safetensors').stat().st_mtime_ns == before
  with pytest.raises(UserError, match='arch=.vgg13. is not one of'):
    convert.convert('vgg13', str(tmp_path / 'vgg19.h5'), str(tmp_path / 'o2'))
  (tmp_path / 'bad.h5').write_bytes(b'not hdf5')
  with pytest.raises(UserError, match='neither a Keras'):
    convert.convert('vgg19', str(tmp_path / 'bad.h5'), str(tmp_path / 'o3'))


def test_predict_with_a_top_returns_keras_probabilities_and_logits_on_request():
  from scipy.special import softmax  # pylint: disable=import-outside-toplevel
  logits = np.random.default_rng(0).normal(0, 30, (4, 1000)).astype(np.float32)
  probs = convert.as_keras_outputs(logits, include_top=True, logits=False)
  np.testing.assert_allclose(probs, softmax(logits, axis=-1), rtol=1e-5, atol=1e-7)
  np.testing.assert_array_equal(probs.argmax(-1), logits.argmax(-1))
  assert convert.as_keras_outputs(logits, include_top=True, logits=True) is logits
  assert convert.as_keras_outputs(logits, include_top=False, logits=False) is logits


def test_convert_and_predict_scripts(tmp_path):
  model = keras_model('vgg19', include_top=False, input_shape=(48, 48, 3))
  model.save(str(tmp_path / 'vgg19.keras'))
  out = tmp_path / 'w'
  r = run_script('scripts.convert_weights', '--arch=vgg19', f'--input={tmp_path}/vgg19.keras',
                 f'--output={out}')
  assert r.returncode == 0, r.stderr
  x = images(48)
  np.save(tmp_path / 'x.npy', x)
  r = run_script('scripts.predict', '--arch=vgg19', f'--weights={out}',
                 f'--input={tmp_path}/x.npy', f'--output={tmp_path}/y.npy')
  assert r.returncode == 0, r.stderr
  np.testing.assert_allclose(np.load(tmp_path / 'y.npy'), keras_outputs(model, x), atol=1e-4)
  (tmp_path / 'm.pth').write_bytes(b'x')
  r = run_script('scripts.convert_weights', '--arch=vgg19', f'--input={tmp_path}/m.pth',
                 f'--output={tmp_path}/w2')
  assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
  assert 'safetensors' in r.stderr
  np.save(tmp_path / 'gray.npy', x[..., :1])
  r = run_script('scripts.predict', '--arch=vgg19', f'--weights={out}',
                 f'--input={tmp_path}/gray.npy', f'--output={tmp_path}/y2.npy')
  assert r.returncode == 2 and 'expected NHWC' in r.stderr
  r = run_script('scripts.predict', '--arch=vgg19', f'--input={tmp_path}/x.npy')
  assert r.returncode == 2 and '--arch with --weights' in r.stderr


def test_unfreeze_from_freezes_the_layers_called_before(load_config):
  config = load_config('configs/transfer/cats_dogs_vgg16.py', 'finetune,smoke')
  model = models.TransferNet(arch='vgg16')
  x = np.zeros((1, 32, 32, 3), np.float32)
  for start, frozen, trained in (
      ('conv_base/block3_conv1', ['block1_conv1', 'block2_conv2'],
       ['block3_conv1', 'block5_conv3']),
      ('conv_base/block5_conv1', ['block4_conv3'], ['block5_conv1'])):
    config.task_config.unfreeze_from = start
    pattern = supervised.frozen_pattern(config.task_config, model, x)
    import re  # pylint: disable=import-outside-toplevel
    for name in frozen:
      assert re.search(pattern, f'conv_base/{name}/kernel'), (start, name)
    for name in trained + ['head/dense_0', 'head/output']:
      path = name if name.startswith('head') else f'conv_base/{name}'
      assert not re.search(pattern, f'{path}/kernel'), (start, name)
  config.task_config.unfreeze_from = 'conv_base/block9_conv1'
  with pytest.raises(UserError, match='not a layer of the model'):
    supervised.frozen_pattern(config.task_config, model, x)


def test_resnet_layers_are_ordered_as_called_not_sorted():
  from library.task import layers_in_call_order  # pylint: disable=import-outside-toplevel
  order = layers_in_call_order(models.ResNet50(include_top=False),
                               np.zeros((1, 32, 32, 3), np.float32))
  assert order.index('conv2_block1_0_conv') < order.index('conv2_block1_0_bn')
  assert order.index('conv1_conv') < order.index('conv1_bn') < order.index('conv2_block1_1_conv')


def _tiny_arrays(n=40, size=32, seed=0):
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, 2, n).astype(np.int32)
  x = rng.uniform(0, 1, (n, size, size, 3)).astype(np.float32) + labels[:, None, None, None]
  return {'train': {'inputs': x, 'labels': labels},
          'validation': {'inputs': x[:10], 'labels': labels[:10]}}


SMOKE_WIDTHS = (4, 8, 16, 32, 32)   # configs/transfer/cats_dogs_vgg16.py's smoke VGG16


def _vgg16_notop_folder(path):
  model = models.VGG(depth=16, include_top=False, preprocess='none', widths=SMOKE_WIDTHS)
  variables = model.init(jax.random.key(3), jnp.zeros((1, 32, 32, 3)))
  weights.save_folder(path, weights.flat_variables(variables), {'arch': 'vgg16'})
  return variables


def test_cached_features_and_model_init_recipes(load_config, tmp_path):
  """5.3's recipes on tiny images: features of the converted base cached once; the base frozen
  end to end keeps its converted values exactly; fine-tuning changes them."""
  base = _vgg16_notop_folder(str(tmp_path / 'vgg16'))
  arrays = _tiny_arrays()
  config = load_config('configs/transfer/cats_dogs_vgg16.py', 'features,smoke')
  config.data.features.init = str(tmp_path / 'vgg16')
  config.data.source, config.data.splits = 'arrays', ('train', 'validation')
  config.data.scale = 1.0
  from library.data import pipeline  # pylint: disable=import-outside-toplevel
  data = pipeline.prepare(config, arrays)
  assert data.splits['train']['inputs'].shape == (40, 1, 1, 32)
  expected = models.VGG(depth=16, include_top=False, preprocess='none', widths=SMOKE_WIDTHS).apply(
      base, arrays['train']['inputs'][:3])
  np.testing.assert_allclose(data.splits['train']['inputs'][:3], expected, rtol=1e-5, atol=1e-5)
  results = train.train_and_evaluate(config, str(tmp_path / 'features'), arrays=arrays)
  assert np.isfinite(results['validation']['loss'])
  # uint8 photos (as read from JPEGs) go through the base as bytes, scaled on the device:
  # the same features as the float32 photos scaled on the host.
  photos = {name: dict(split, inputs=(np.clip(split['inputs'] / 2, 0, 1) * 255).astype(np.uint8))
            for name, split in arrays.items()}
  config.data.scale = 1 / 255
  from_bytes = pipeline.prepare(config, photos)
  assert from_bytes.input_scale is None and from_bytes.splits['train']['inputs'].dtype == np.float32
  scaled = photos['train']['inputs'].astype(np.float32) * np.float32(1 / 255)
  np.testing.assert_allclose(from_bytes.splits['train']['inputs'], models.VGG(
      depth=16, include_top=False, preprocess='none', widths=SMOKE_WIDTHS).apply(base, scaled),
                             rtol=1e-5, atol=1e-5)

  flat_base = {k.replace('params/', 'params/conv_base/'): v
               for k, v in weights.flat_variables(base).items()}
  config = load_config('configs/transfer/cats_dogs_vgg16.py', 'frozen,smoke')
  config.model_init.path = str(tmp_path / 'vgg16')
  config.data.source, config.data.splits = 'arrays', ('train', 'validation')
  train.train_and_evaluate(config, str(tmp_path / 'frozen'), arrays=arrays)
  frozen = weights.workdir_variables(str(tmp_path / 'frozen'))
  for key in ('params/conv_base/block1_conv1/kernel', 'params/conv_base/block5_conv3/kernel'):
    assert np.array_equal(frozen[key], flat_base[key]), key
  config = load_config('configs/transfer/cats_dogs_vgg16.py', 'finetune,smoke')
  config.model_init.path = str(tmp_path / 'frozen')     # the frozen run, head included
  config.data.source, config.data.splits = 'arrays', ('train', 'validation')
  config.optimizer.learning_rate = 1e-3
  train.train_and_evaluate(config, str(tmp_path / 'finetune'), arrays=arrays)
  tuned = weights.workdir_variables(str(tmp_path / 'finetune'))
  assert np.array_equal(tuned['params/conv_base/block2_conv2/kernel'],
                        frozen['params/conv_base/block2_conv2/kernel'])   # before block3_conv1
  for key in ('params/conv_base/block3_conv1/kernel', 'params/head/output/kernel'):
    assert not np.array_equal(tuned[key], frozen[key]), key


def test_model_init_errors(load_config, tmp_path):
  _vgg16_notop_folder(str(tmp_path / 'vgg16'))
  arrays = _tiny_arrays()
  config = load_config('configs/transfer/cats_dogs_vgg16.py', 'frozen,smoke')
  config.data.source, config.data.splits = 'arrays', ('train', 'validation')
  config.model.kwargs.arch = 'vgg19'
  config.model_init.path = str(tmp_path / 'vgg16')
  with pytest.raises(UserError, match='missing .*block3_conv4'):
    train.train_and_evaluate(config, str(tmp_path / 'a'), arrays=arrays)
  config.model.kwargs.arch = 'vgg16'
  config.model_init.prefix = ''
  with pytest.raises(UserError, match='extra'):
    train.train_and_evaluate(config, str(tmp_path / 'b'), arrays=arrays)
  config.model_init.prefix = 'conv_base'
  config.model_init.path = str(tmp_path / 'nowhere')
  with pytest.raises(UserError, match='does not exist'):
    train.train_and_evaluate(config, str(tmp_path / 'c'), arrays=arrays)
  config.model_init.path = str(tmp_path / 'weights.pth')
  with pytest.raises(UserError, match='pickle'):
    train.train_and_evaluate(config, str(tmp_path / 'd'), arrays=arrays)
  config.model_init.path = str(tmp_path / 'vgg16')
  config.task_config.freeze = 'no_such_layer'
  config.task_config.unfreeze_from = ''
  with pytest.raises(UserError, match='matches no parameter'):
    train.train_and_evaluate(config, str(tmp_path / 'e'), arrays=arrays)


def test_keep_labels_relabels_and_checks(load_config):
  from library.data import pipeline  # pylint: disable=import-outside-toplevel
  config = load_config('configs/transfer/digits.py', 'scratch,smoke')
  data = pipeline.prepare(config)
  assert sorted(np.unique(data.splits['train']['labels'])) == [0, 1, 2, 3, 4]
  assert data.size('train') == 100 and data.size('test') == 1000
  config.data.keep_labels = (5, 6, 7, 8, 11)
  with pytest.raises(UserError, match=r'labels \[11\] have no example'):
    pipeline.prepare(config)


def test_visualize_digits_and_vgg16(load_config, tmp_path):
  """5.4 on a trained digits convnet (real) and on a small-width VGG16 (random weights)."""
  from projects.convnets import visualize  # pylint: disable=import-outside-toplevel
  config = load_config('configs/convnets/mnist_convnet.py', 'embedded,smoke')
  train.train_and_evaluate(config, str(tmp_path / 'convnet'))
  vis = load_config('configs/convnets/visualize.py', 'digits,smoke')
  vis.init = str(tmp_path / 'convnet')
  visualize.validate(vis)
  summary = visualize.run(vis, str(tmp_path / 'vis'))
  assert list(summary['activations']) == ['Conv_0', 'Conv_1']
  assert summary['activations']['Conv_0'] == [26, 26, 4]
  for name in ('activations.png', 'filters_Conv_0.png', 'filters_Conv_2.png', 'gradcam.png'):
    assert (tmp_path / 'vis' / name).stat().st_size > 1000, name

  model = models.VGG(depth=16, include_top=True, widths=SMOKE_WIDTHS, num_classes=5)
  variables = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
  weights.save_folder(str(tmp_path / 'vgg'), weights.flat_variables(variables), {})
  (tmp_path / 'names.txt').write_text('tabby\ntiger\nlynx\negyptian cat\npersian\n')
  for variant in ('smoke', 'filters,smoke'):
    vis = load_config('configs/convnets/visualize.py', variant)
    vis.model.kwargs.widths, vis.model.kwargs.num_classes = SMOKE_WIDTHS, 5
    vis.model.kwargs.include_top = variant == 'smoke'
    vis.image_size, vis.init = (32, 32), str(tmp_path / 'vgg')
    vis.gradcam.class_names = str(tmp_path / 'names.txt')
    if variant != 'smoke':
      vis.init = str(tmp_path / 'vgg-notop')
      flat = {k: v for k, v in weights.flat_variables(variables).items()
              if k.split('/')[1].startswith('block')}
      if not (tmp_path / 'vgg-notop').exists():
        weights.save_folder(vis.init, flat, {})
    summary = visualize.run(vis, str(tmp_path / variant))
    if variant == 'smoke':
      top = summary['gradcam']['top']
      assert len(top) == 3 and top[0]['name'] in ('tabby', 'tiger', 'lynx', 'egyptian cat',
                                                  'persian')
      assert abs(sum(t['probability'] for t in top)) <= 1.0 + 1e-6
    else:
      assert (tmp_path / variant / 'filters_block4_conv1.png').exists()
  vis.gradcam.layer = 'block9_conv1'
  vis.show = ('gradcam',)
  vis.init = str(tmp_path / 'vgg')
  vis.model.kwargs.include_top = True
  with pytest.raises(UserError, match='not a layer with a 4-D output'):
    visualize.run(vis, str(tmp_path / 'bad'))
  vis.image = 'skimage:no_such_photo'
  with pytest.raises(UserError, match='scikit-image has no photo'):
    visualize.run(vis, str(tmp_path / 'bad'))
