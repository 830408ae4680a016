"""Book 5.3, "Using a pretrained convnet": VGG16 (ImageNet) on the 2,000 cats and dogs of 5.2.

The ImageNet weights are named `imagenet:vgg16_notop`: Keras' VGG16 file without the top
(59 MB, MD5 from Keras' source) is fetched into ~/.keras/models on first use and converted once
into the weight folder ~/weights/vgg16_notop (or ahead of time: python -m scripts.fetch --only
vgg16_notop). With the 5.2 subset in ~/cats_and_dogs_small (scripts.make_cats_dogs_subset):
  python -m scripts.train --config=configs/transfer/cats_dogs_vgg16.py:features --workdir=/tmp/fx
  python -m scripts.train --config=configs/transfer/cats_dogs_vgg16.py:frozen --workdir=/tmp/fz
  python -m scripts.train --config=configs/transfer/cats_dogs_vgg16.py:finetune --workdir=/tmp/ft \
      --config.model_init.path=/tmp/fz
  python -m scripts.train --config=configs/transfer/cats_dogs_vgg16.py:finetune_block5 \
      --workdir=/tmp/ft5 --config.model_init.path=/tmp/fz

- `features` (recipe 1): the frozen base runs once over every image (150x150 -> 4x4x512,
  data.features); a dense 256 -> dropout 0.5 -> 1 head trains on the cached maps; rmsprop 2e-5,
  30 epochs of batch 20.
- `frozen` (recipe 2): base (frozen) + flatten + dense 256 + 1, end to end with 5.2's
  augmentation; rmsprop 2e-5, 30 epochs of batch 20.
- `finetune` (recipe 3, R book): the `frozen` run's model, block3_conv1 onwards unfrozen
  (`unfreeze_from`), rmsprop 1e-5, 100 epochs. `finetune_block5`: the Python book's twin,
  unfrozen from block5_conv1.
- `keras_preprocess`: added to any of them, images stay in [0, 255] and VGG16's own
  preprocessing (BGR, ImageNet means) runs inside the network; the book feeds [0, 1] images.
Book: validation accuracy ~0.90 for recipes 1 and 2 (text); fine-tuned test accuracy 0.965
(printed). Ours: not run here (neither the ImageNet weights nor Kaggle's images can be
downloaded on our machines). The tests run every recipe on small images with random VGG16
weights, and check the converter against Keras' VGG16 (tests/test_transfer.py).
Variants: `features`, `frozen`, `finetune`, `finetune_block5` (one; default `frozen`),
`keras_preprocess`, `tfds` (TFDS cats_vs_dogs, as 5.2's), `smoke`.
"""
from configs import variants
from library.config import default_config

VARIANTS = ('features', 'frozen', 'finetune', 'finetune_block5', 'keras_preprocess', 'tfds',
            'smoke')
WEIGHTS = 'imagenet:vgg16_notop'
SMOKE_WIDTHS = (4, 8, 16, 32, 32)


def get_config(arg: str | None = None):
  chosen = variants.parse(arg, VARIANTS)
  recipe = variants.pick_one(chosen, ('features', 'frozen', 'finetune', 'finetune_block5'),
                             'frozen')
  preprocess = 'caffe' if 'keras_preprocess' in chosen else 'none'
  config = default_config()
  variants.use_cats_dogs_small(config, tfds='tfds' in chosen)
  if preprocess == 'caffe':
    config.data.scale = 1.0
  config.optimizer.name = 'rmsprop'
  config.optimizer.learning_rate = 2e-5
  config.model.module = 'projects.transfer.models'
  if recipe == 'features':
    config.data.features.module = 'projects.transfer.models'
    config.data.features.name = 'VGG'
    config.data.features.kwargs.depth = 16
    config.data.features.kwargs.include_top = False
    config.data.features.kwargs.preprocess = preprocess
    config.data.features.init = WEIGHTS
    config.data.features.batch_size = 20
    config.model.name = 'DenseHead'
    config.model.kwargs.dense = (256,)
    config.model.kwargs.dropout_rate = 0.5
    config.model.kwargs.num_outputs = 1
  else:
    config.model.name = 'TransferNet'
    config.model.kwargs.arch = 'vgg16'
    config.model.kwargs.preprocess = preprocess
    config.model.kwargs.dense = (256,)
    config.model.kwargs.dropout_rate = 0.0
    config.model.kwargs.num_outputs = 1
    variants.use_book_augmentation(config)
  if recipe == 'frozen':
    config.model_init.path = WEIGHTS
    config.model_init.prefix = 'conv_base'
    config.task_config.freeze = '^conv_base/'
  if recipe in ('finetune', 'finetune_block5'):
    config.model_init.path = '/tmp/fz'   # the `frozen` run's workdir: set it on the command line
    config.task_config.unfreeze_from = ('conv_base/block3_conv1' if recipe == 'finetune'
                            else 'conv_base/block5_conv1')
    config.optimizer.learning_rate = 1e-5
    config.num_epochs = 100.0
  if 'smoke' in chosen:   # VGG16's layers and names, 1/16 of its widths
    variants.shrink_for_smoke(config)
    config.data.image_size = (32, 32)
    config.data.features.batch_size = 8
    if recipe == 'features':
      config.data.features.kwargs.widths = SMOKE_WIDTHS
      config.model.kwargs.dense = (16,)
    else:
      config.model.kwargs.base_widths = SMOKE_WIDTHS
      config.model.kwargs.dense = (16,)
  return config
