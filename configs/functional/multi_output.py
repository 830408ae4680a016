"""Book 7.1.3, a model with three outputs: from one social-media text, an age (regression), an
income group (of 10) and a gender (binary).

  python -m scripts.train --config=configs/functional/multi_output.py --workdir=/tmp/social

embedding 256 (vocabulary 50,000) -> conv1d 128 k5 -> max pool 5 -> conv1d 256 k5 x2 -> max
pool 5 -> conv1d 256 k5 x2 -> global max pool -> dense 128 -> three heads, as the book's text.
Losses per output as the book's: mse (age), sparse categorical cross-entropy (income, integer
groups), binary cross-entropy (gender), loss weights 0.25 / 1 / 10; rmsprop 1e-3, batch 64,
20 epochs.
Metrics per output, as Keras names them: age_mae, income_accuracy, gender_accuracy (and each
output's loss). Data generated with a known answer (projects/functional/data.py): in each text
of 300 words, one of 11 age words, one of 10 income words and (or not) a gender word carry the
answers; baselines: the mean age (MAE about 11), the most common group (0.1), the more common
gender (0.5). 2,000 examples (1,200 train, 400 validation, 400 test).
Ours: test gender accuracy 1.000 (baseline 0.5) from epoch 5; income accuracy 0.16 and age MAE
1.04 standard deviations stay near their baselines (0.1, 0.87) in these 20 epochs; 135 s of
training on a 2-core x86 CPU (JAX 0.10.2). Not in the book as a result (it prints none for
chapter 7). More in projects/functional/README.md.
Variants: `smoke` a few steps on a small problem and model.
"""
from configs import variants
from library.config import default_config

VARIANTS = ('smoke',)


def get_config(arg: str | None = None):
  chosen = variants.parse(arg, VARIANTS)
  config = default_config()
  config.model.module = 'projects.functional.models'
  config.model.name = 'SocialMedia'
  t = config.task_config
  t.outputs = ('age', 'income', 'gender')
  t.output_losses = ('mse', 'sparse_categorical_crossentropy', 'binary_crossentropy')
  t.loss_weights = (0.25, 1.0, 10.0)
  t.output_metrics = ('mae', 'accuracy', 'accuracy')
  config.data.source = 'generator'
  config.data.generator = 'projects.functional.data.social_media'
  config.data.generator_kwargs.num_examples = 2000
  config.data.generator_kwargs.length = 300        # the book's blocks need about 270 words
  config.data.pool = 'train'
  config.data.splits = ()
  config.optimizer.name = 'rmsprop'
  config.optimizer.learning_rate = 1e-3
  config.batch_size = 64
  config.eval_batch_size = 500
  config.num_epochs = 20.0
  if 'smoke' in chosen:
    config.data.generator_kwargs.num_examples = 400
    config.model.kwargs.vocabulary = 1000
    config.model.kwargs.embed_dim = 16
    config.model.kwargs.blocks = ((16,), (16,), (16,))
    config.model.kwargs.hidden = 16
    variants.shrink_for_smoke(config)
  return config
