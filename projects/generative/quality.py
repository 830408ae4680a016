"""How digit-like generated digits are, measured by a digit classifier (a trained workdir).

  python -m scripts.sample_quality --classifier=/tmp/convnet --workdir=/tmp/vae --workdir=/tmp/gd

The classifier (the book's 5.1 convnet trained on the offline digits) scores any set of
28x28x1 images in [0, 1]:
- `confidence`: the mean probability of the predicted class (a digit the classifier is sure
  of is digit-like);
- `class_entropy`: the entropy (nats) of the histogram of predicted classes: ln 10 = 2.303 when
  every digit is made equally often, 0 when one digit only;
- `inception_score`: exp(E_x KL(p(y|x) || p(y))), the Inception Score with this classifier in
  place of Inception (1 to 10; high when each image is one clear digit and the digits vary);
- `frechet_distance`: the Fréchet distance between Gaussians fitted to the classifier's
  penultimate features (the input of its last Dense layer) of the set and of the classifier's
  own training digits (FID with this classifier in place of Inception; 0 is the same
  distribution).
Real held-out digits and uniform noise, scored the same way, bound what the numbers mean.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from scipy import linalg

from library import inference, train
from library.errors import UserError


class Classifier:
  """A trained classifier workdir: probabilities and penultimate features of images."""

  def __init__(self, workdir: str, batch_size: int = 500):
    config = inference.load_config(workdir)
    if config.task != 'library.supervised' or config.task_config.loss not in (
        'categorical_crossentropy', 'sparse_categorical_crossentropy'):
      raise UserError(f'--classifier={workdir} is not a softmax classifier (task='
                      f'{config.task!r}): train configs/convnets/mnist_convnet.py:embedded')
    s = train.setup(config)
    if s.datasets is None or s.members is not None:
      raise UserError(f'--classifier={workdir} is not a single classifier trained on a dataset')
    state, _ = inference.restore(workdir, config, s.state, 'latest', s.hook.size)
    self.train_inputs = np.asarray(s.datasets.inputs('train'))
    self.test_inputs = np.asarray(s.datasets.inputs('test')) if (
        'test' in s.datasets.splits) else None
    if self.train_inputs.shape[1:] != (28, 28, 1):
      raise UserError(f'--classifier={workdir} takes inputs of shape '
                      f'{self.train_inputs.shape[1:]}, not digits of 28x28x1')
    from library.task import make_model  # pylint: disable=import-outside-toplevel
    model = make_model(config.model)
    variables = s.task.variables(state)
    self.batch_size = batch_size

    @jax.jit
    def forward(x):
      last_dense_input = []

      def record(next_fun, args, kwargs, context):
        if isinstance(context.module, nn.Dense) and context.method_name == '__call__':
          last_dense_input.append(args[0])
        return next_fun(*args, **kwargs)

      with nn.intercept_methods(record):
        logits = model.apply(variables, x, train=False)
      return jax.nn.softmax(logits), last_dense_input[-1]

    self._forward = forward

  def __call__(self, images) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities (N, classes), penultimate features (N, D)) of images in [0, 1]."""
    out = [self._forward(jnp.asarray(images[i:i + self.batch_size], jnp.float32))
           for i in range(0, len(images), self.batch_size)]
    return (np.concatenate([np.asarray(p) for p, _ in out]),
            np.concatenate([np.asarray(f) for _, f in out]))


def frechet_distance(a_NxD, b_MxD, ridge: float = 1e-6) -> float:
  """Between Gaussians fitted to two sets of features. `ridge` on the diagonals keeps the
  square root defined when features never fire (ReLU units dead on every image)."""
  mu_a, mu_b = a_NxD.mean(0), b_MxD.mean(0)
  eye = ridge * np.eye(a_NxD.shape[1])
  cov_a, cov_b = np.cov(a_NxD, rowvar=False) + eye, np.cov(b_MxD, rowvar=False) + eye
  root = np.real(linalg.sqrtm(cov_a @ cov_b))
  return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2 * root))


def scores(probs_NxK, features_NxD, reference_features_MxD) -> dict[str, float]:
  classes = probs_NxK.shape[1]
  histogram = np.bincount(probs_NxK.argmax(1), minlength=classes) / len(probs_NxK)
  nonzero = histogram[histogram > 0]
  marginal = probs_NxK.mean(0)
  eps = 1e-12
  kl = np.sum(probs_NxK * (np.log(probs_NxK + eps) - np.log(marginal + eps)), axis=1)
  return {'confidence': float(probs_NxK.max(1).mean()),
          'class_entropy': float(-np.sum(nonzero * np.log(nonzero))),
          'inception_score': float(np.exp(kl.mean())),
          'frechet_distance': frechet_distance(features_NxD, reference_features_MxD)}


def samples_of(workdir: str, count: int, seed: int) -> dict[str, np.ndarray]:
  """{how: `count` images in [0, 1]} drawn from a generative workdir: its task module's
  `sample` (from the prior), and `sample_fitted` where the module has one (the VAE's codes
  from a Gaussian fitted to its training digits' codes)."""
  import importlib  # pylint: disable=import-outside-toplevel
  config = inference.load_config(workdir)
  module = importlib.import_module(config.task)
  if not hasattr(module, 'sample'):
    raise UserError(f'{workdir} is a run of task={config.task!r}, which draws no images')
  s = train.setup(config)
  if s.members is not None:
    raise UserError(f'{workdir} has members; score one run')
  state, _ = inference.restore(workdir, config, s.state, 'latest', s.hook.size)
  key = jax.random.key(seed)
  out = {'prior': np.asarray(module.sample(config, state, key, count))}
  if hasattr(module, 'sample_fitted'):
    out['fitted codes'] = np.asarray(module.sample_fitted(
        config, state, s.datasets.inputs('train'), key, count))
  return out


def table(classifier: Classifier, sets: dict[str, np.ndarray]) -> dict[str, dict]:
  """{name: scores} for each set of images, against the classifier's training digits."""
  _, reference = classifier(classifier.train_inputs)
  return {name: scores(*classifier(images), reference) for name, images in sets.items()}
