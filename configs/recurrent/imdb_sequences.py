"""Book 6.1-6.4 on IMDB word sequences: embeddings, SimpleRNN, LSTM, bidirectional LSTM, 1D convnet.

  python -m scripts.train --config=configs/recurrent/imdb_sequences.py:lstm --workdir=/tmp/lstm
  python -m scripts.train --config=configs/recurrent/imdb_sequences.py:conv1d,folder \
      --workdir=/tmp/conv1d

Top 10,000 words, reviews padded / truncated to their last 500 words (Keras' pad_sequences
defaults), 20% of the training reviews held out (the first 5,000: Keras' validation_split
takes the last 20% of its own shuffled order, the same kind of split), rmsprop, binary
cross-entropy on logits, batch 128, 10 epochs. Models (projects/recurrent/models.py):
- embedding: 6.1, embedding 8 -> flatten -> 1, reviews cut to their last 20 words, batch 32.
  Book: validation accuracy ~0.75 (text).
- simple_rnn: 6.2, embedding 32 -> SimpleRNN 32 -> 1. Book: validation accuracy ~0.84 (text).
- lstm: 6.2, embedding 32 -> LSTM 32 -> 1. Book: best validation accuracy ~0.89 (plot).
- bidirectional_lstm: 6.3, embedding 32 -> Bidirectional(LSTM 32) -> 1. Book: above 0.88.
- conv1d: 6.4, embedding 128 -> conv1d 32 k7 -> max pool 5 -> conv1d 32 k7 -> global max pool
  -> 1, rmsprop 1e-4. Book: best validation accuracy ~0.84 (plot).
Ours: not run here (no network to fetch IMDB); the tests run every model on mock data in the
three formats. Variants: a model name (default lstm); the data format: (none) Keras'
~/.keras/datasets/imdb.npz, `tfds` TFDS imdb_reviews raw text, `folder` Stanford's aclImdb
folders (data.path, default ~/aclImdb) raw text (both tokenized with a vocabulary fitted on
the training reviews); the two files are fetched on first use (python -m scripts.fetch --only
imdb --only aclimdb); `smoke` a few steps.
"""
from configs import variants
from library.config import default_config
from library.errors import UserError

MODELS = ('embedding', 'simple_rnn', 'lstm', 'bidirectional_lstm', 'conv1d')
VARIANTS = MODELS + ('tfds', 'folder', 'smoke')


def get_config(arg: str | None = None):
  chosen = variants.parse(arg, VARIANTS)
  model = variants.pick_one(chosen, MODELS, 'lstm')
  if 'tfds' in chosen and 'folder' in chosen:
    raise UserError('choose one data format: tfds or folder')
  config = default_config()
  config.model.module = 'projects.recurrent.models'
  config.model.name = 'SequenceNet'
  kwargs = config.model.kwargs
  kwargs.num_words = 10000
  kwargs.embed_dim = 32
  if model == 'embedding':
    kwargs.embed_dim = 8
    kwargs.flatten = True
  elif model == 'conv1d':
    kwargs.embed_dim = 128
    kwargs.conv = ((32, 7), (32, 7))
    kwargs.pool_size = 5
    kwargs.global_pool = True
  else:
    kwargs.rnn = 'simple_rnn' if model == 'simple_rnn' else 'lstm'
    kwargs.units = (32,)
    kwargs.bidirectional = model == 'bidirectional_lstm'
  kwargs.num_outputs = 1
  config.task_config.loss = 'binary_crossentropy'
  config.task_config.metrics = ('accuracy',)
  config.data.source = 'keras_imdb'
  config.data.path = '~/.keras/datasets/imdb.npz'
  config.data.num_words = 10000
  config.data.maxlen = 20 if model == 'embedding' else 500
  config.data.validation = 0.2
  config.data.shuffle_holdout = False
  config.optimizer.name = 'rmsprop'
  config.optimizer.learning_rate = 1e-4 if model == 'conv1d' else 1e-3
  config.batch_size = 32 if model == 'embedding' else 128
  config.eval_batch_size = 500
  config.num_epochs = 10.0
  if kwargs.get('rnn'):
    # LSTM, 2-core CPU, examples/s (ours; Keras 3: 676-700): 1 step per dispatch 733-740;
    # 2: 897; 4: 922-981; 8: 775. With 4 per dispatch, the input projection hoisted out of
    # the time scan: 654; the time scan unrolled 2: 785, 4: 572. Commands:
    #   python -m scripts.benchmark --only imdb_lstm --steps_per_dispatch 1,2,4,8 --no_keras
    #   python -m scripts.benchmark --only imdb_lstm --set model.kwargs.hoist_input=true
    #   python -m scripts.benchmark --only imdb_lstm --set model.kwargs.unroll=2
    # The hand-written backward pass (library/recurrent_fused.py), 1 / 4 per dispatch: 641 /
    # 764 against autodiff's 655 / 813 in the same hour:
    #   python -m scripts.benchmark --only imdb_lstm --steps_per_dispatch 1,4 --no_keras \
    #     --set model.kwargs.backward=fused
    config.steps_per_dispatch.cpu = 4
  if 'tfds' in chosen or 'folder' in chosen:
    # Raw reviews come ordered (aclImdb's folders: every negative, then every positive): the
    # validation reviews are drawn at random, as Keras' imdb.npz was shuffled once for its users.
    config.data.shuffle_holdout = True
  if 'tfds' in chosen:
    variants.use_tfds_imdb(config)
  if 'folder' in chosen:
    config.data.source = 'text_folder'
    config.data.path = '~/aclImdb'
    config.data.class_names = ('neg', 'pos')
    config.data.tokenize = 'words'
  if 'smoke' in chosen:
    variants.shrink_for_smoke(config)
    config.data.validation = 8
    config.data.maxlen = min(config.data.maxlen, 60)
  return config
