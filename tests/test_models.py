"""Parameter counts equal the book's summaries."""
import jax
import jax.numpy as jnp
import pytest

from library.task import make_model


@pytest.mark.parametrize('path,shape,expected', [
    ('configs/mlp/mnist_dense.py', (1, 784), 407_050),          # book 2.1
    ('configs/convnets/mnist_convnet.py', (1, 28, 28, 1), 93_322),  # book 5.1
])
def test_parameter_counts_equal_the_book(load_config, path, shape, expected):
  model = make_model(load_config(path).model)
  params = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros(shape)))['params']
  assert sum(x.size for x in jax.tree.leaves(params)) == expected


def test_convnet_dropout_is_active_only_in_training():
  from projects.convnets.models import SmallConvnet  # pylint: disable=import-outside-toplevel
  model = SmallConvnet(features=(4,), pool_after=(True,), dense=(8,), dropout_rate=0.5)
  x = jnp.ones((2, 8, 8, 1))
  variables = model.init(jax.random.PRNGKey(0), x)
  eval_a = model.apply(variables, x)
  eval_b = model.apply(variables, x)
  train = model.apply(variables, x, train=True, rngs={'dropout': jax.random.PRNGKey(1)})
  assert jnp.array_equal(eval_a, eval_b)
  assert not jnp.allclose(train, eval_a)
