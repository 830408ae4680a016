"""Book 5.2, "Training a convnet from scratch on a small dataset": cats vs dogs, 2,000 images.

  python -m scripts.make_cats_dogs_subset --kaggle_train=~/Downloads/train \
      --output=~/cats_and_dogs_small
  python -m scripts.train --config=configs/convnets/cats_dogs_small.py --workdir=/tmp/cd
  python -m scripts.train --config=configs/convnets/cats_dogs_small.py:augment --workdir=/tmp/cda

150x150 RGB /255; conv32-pool-conv64-pool-conv128-pool-conv128-pool -> dense 512 -> 1
(3,453,121 parameters); rmsprop 1e-4, binary cross-entropy; 30 epochs of batch 20.
`augment`: rotation 40, width/height shift 0.2, shear 0.2, zoom 0.2, horizontal flip (on
device, library/data/augment.py), dropout 0.5 before the dense layers, 100 epochs of batch 32.
Book: validation accuracy 0.70-0.72 without augmentation, ~0.82 with (text).
`tfds`: TFDS `cats_vs_dogs` instead of the folder, prepared once on a machine with network by
  python -c "import tensorflow_datasets as tfds; \
      tfds.builder('cats_vs_dogs').download_and_prepare()"
Its first 2,000 / next 1,000 / next 1,000 photos (shuffled by TFDS, both classes), resized to
150x150 once as they are read.
Ours: not run here (neither Kaggle's nor TFDS' images can be downloaded on our machines; the
tests run every variant on small generated images, TFDS through its mock data).
`python -m scripts.benchmark --only cats_dogs_small_aug` times the `augment` training step
against Keras 3's own augmentation layers: see the README's table.
Variants: `augment`, `tfds`, `smoke`.
"""
from configs import variants
from library.config import default_config

VARIANTS = ('augment', 'tfds', 'smoke')


def get_config(arg: str | None = None):
  chosen = variants.parse(arg, VARIANTS)
  config = default_config()
  config.model.module = 'projects.convnets.models'
  config.model.name = 'SmallConvnet'
  k = config.model.kwargs
  k.features, k.pool_after, k.dense, k.num_outputs = (32, 64, 128, 128), (True,) * 4, (512,), 1
  variants.use_cats_dogs_small(config, tfds='tfds' in chosen)
  config.optimizer.name = 'rmsprop'
  config.optimizer.learning_rate = 1e-4
  if 'augment' in chosen:
    variants.use_book_augmentation(config)
    k.dropout_rate = 0.5
    config.batch_size = 32
    config.num_epochs = 100.0
  if 'smoke' in chosen:
    variants.shrink_for_smoke(config)
    config.data.image_size = (48, 48)
  return config
