"""Generated problems with a known answer for book 7.1's functional-API models.

Each answer needs every input (or, for several outputs, a different part of the text for each
output), so a model that learns them beats any baseline that looks at less: the majority
answer, or the best answer from one input alone (computed exactly and reported next to the
model as `reference` metrics).

Token 0 is padding, as Keras' embeddings expect; tokens 1.. are words.
"""
import numpy as np


def _split(n: int, validation: float, test: float):
  n_test, n_val = int(round(n * test)), int(round(n * validation))
  first_val = n - n_val - n_test
  return {'train': slice(0, first_val), 'validation': slice(first_val, n - n_test),
          'test': slice(n - n_test, n)}


def question_answering(num_examples: int = 1000, text_length: int = 100,
                       question_length: int = 10, noise_words: int = 100, topics: int = 5,
                       kinds: int = 5, validation: float = 0.2, test: float = 0.2,
                       seed: int = 0) -> dict:
  """7.1.2: a reference text and a question into one answer word.

  The text is noise (of `noise_words` words) with one topic word (of `topics`) written 3 times
  at random places; the question is noise with one question word (of `kinds`). The answer is
  answer word number topic x kinds + kind (topics x kinds answers): the text alone leaves 1 in
  `kinds` to guess, the question alone 1 in `topics`.
  """
  rng = np.random.default_rng(seed)
  noise_from = 1 + topics + kinds
  text = rng.integers(noise_from, noise_from + noise_words, (num_examples, text_length))
  question = rng.integers(noise_from, noise_from + noise_words, (num_examples, question_length))
  topic = rng.integers(0, topics, num_examples)
  kind = rng.integers(0, kinds, num_examples)
  for i in range(num_examples):
    text[i, rng.choice(text_length, 3, replace=False)] = 1 + topic[i]
    question[i, rng.integers(question_length)] = 1 + topics + kind[i]
  answer = topic * kinds + kind
  parts = _split(num_examples, validation, test)
  splits = {name: {'inputs': {'text': text[p].astype(np.int32),
                              'question': question[p].astype(np.int32)},
                   'labels': answer[p].astype(np.int32)} for name, p in parts.items()}
  return splits


def best_single_input_accuracy(topics: int = 5, kinds: int = 5) -> float:
  """The accuracy of the best guess from the text alone (or the question alone): knowing the
  topic t, the answer t + k is uniform over `kinds` values, so 1 / kinds (1 / topics)."""
  return 1.0 / min(topics, kinds)


def social_media(num_examples: int = 2000, length: int = 300, noise_words: int = 200,
                 income_groups: int = 10, ages: int = 11, copies: int = 5,
                 validation: float = 0.2, test: float = 0.2, seed: int = 0) -> dict:
  """7.1.3: from one text, an age (regression), an income group (of 10) and a gender.

  Each text holds, `copies` times each at random places among noise words (of `noise_words`),
  one age word (of 11: the age is
  18 + 4 x its number, plus noise of sd 2), one income word (its number is the group) and, for
  one gender, the gender word. The answers are there to find, each in its own word, which a
  convolution and a global max pool detect. Ages are z-scored with the training rows'
  statistics (their standard deviation is about 12.8 years). Baselines: the mean age (MAE
  about 0.87 standard deviations, 11 years), the most common group (0.1), the more common
  gender (0.5).
  """
  rng = np.random.default_rng(seed)
  first_noise = 1 + ages + income_groups + 1
  text = rng.integers(first_noise, first_noise + noise_words, (num_examples, length))
  age_word = rng.integers(0, ages, num_examples)
  income = rng.integers(0, income_groups, num_examples)
  gender = rng.integers(0, 2, num_examples)
  for i in range(num_examples):
    at = rng.choice(length, 3 * copies, replace=False).reshape(3, copies)
    text[i, at[0]] = 1 + age_word[i]
    text[i, at[1]] = 1 + ages + income[i]
    if gender[i]:
      text[i, at[2]] = first_noise - 1
  age = 18.0 + 4.0 * age_word + rng.normal(0.0, 2.0, num_examples)
  parts = _split(num_examples, validation, test)
  # Ages z-scored with the training rows' statistics, so that the book's loss weights
  # (0.25 / 1 / 10) balance an mse of a few units against the cross-entropies, as its text
  # says; in years, an age MAE is this MAE x AGE_STD_YEARS (about 12.8).
  train_age = age[parts['train']]
  age = (age - train_age.mean()) / train_age.std()
  return {name: {'inputs': text[p].astype(np.int32),
                 'labels': {'age': age[p].astype(np.float32),
                            'income': income[p].astype(np.int32),
                            'gender': gender[p].astype(np.float32)}}
          for name, p in parts.items()}
