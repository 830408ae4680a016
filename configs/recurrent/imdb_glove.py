"""Book 6.1 (B): pretrained GloVe word embeddings on 200 training reviews, frozen.

  python -m scripts.train --config=configs/recurrent/imdb_glove.py --workdir=/tmp/glove

Raw aclImdb reviews, a tokenizer fitted on the training reviews (top 10,000 words), reviews cut
to their first 100 words as the book's, 10,000 held out for validation and only 200 to train
on; embedding 100 (GloVe 6B 100-d vectors for the tokenizer's words, frozen:
freeze='Embed_0/embedding') -> flatten -> dense 32 relu -> 1; rmsprop, binary
cross-entropy, 10 epochs, batch 32. `scratch`: the same with the embedding learned from
scratch (the book's comparison).
Book: test accuracy 0.56 (printed); validation ~0.5-0.6 either way with 200 samples.
Ours: not run here (aclImdb and GloVe cannot be downloaded on our machines); the tests run it
on mock reviews and a mock GloVe file. Both defaults are fetched on first use (python -m
scripts.fetch --only aclimdb --only glove): ~/aclImdb from Stanford's aclImdb_v1.tar.gz (84 MB,
SHA-256 from TFDS), ~/glove.6B.100d.txt from https://nlp.stanford.edu/data/glove.6B.zip (862 MB,
no published hash: unverified); the archives stay in ~/.keras/datasets/. Variants: `scratch`,
`smoke`.
"""
from configs import variants
from library.config import default_config

VARIANTS = ('scratch', 'smoke')


def get_config(arg: str | None = None):
  chosen = variants.parse(arg, VARIANTS)
  config = default_config()
  config.model.module = 'projects.recurrent.models'
  config.model.name = 'SequenceNet'
  k = config.model.kwargs
  k.num_words, k.embed_dim, k.flatten, k.hidden, k.num_outputs = 10000, 100, True, (32,), 1
  config.task_config.loss = 'binary_crossentropy'
  config.task_config.metrics = ('accuracy',)
  config.data.source = 'text_folder'
  config.data.path = '~/aclImdb'
  config.data.class_names = ('neg', 'pos')
  config.data.tokenize = 'words'
  config.data.num_words = 10000
  config.data.maxlen = 100
  config.data.truncating = 'post'     # the book keeps each review's first 100 words
  config.data.validation = 10000
  config.data.max_train = 200
  config.data.embedding_variable = 'params/Embed_0/embedding'   # the model's embedding
  if 'scratch' not in chosen:
    config.data.embedding_file = '~/glove.6B.100d.txt'
    config.task_config.freeze = 'Embed_0/embedding'
  config.optimizer.name = 'rmsprop'
  config.optimizer.learning_rate = 1e-3
  config.batch_size = 32
  config.eval_batch_size = 1000
  config.num_epochs = 10.0
  if 'smoke' in chosen:
    variants.shrink_for_smoke(config)
    config.data.validation = 8
    config.data.max_train = 32
  return config
