"""Mixed precision: parameters, optimizer state and batch statistics stay float32; the
forward and backward passes compute in bfloat16.

`compute(params, inputs, policy)` casts the floating parameters and inputs to the policy's
dtype inside the step (integer inputs, such as word indices, are left as they are); the
model's outputs go back to float32 before the loss, so losses, metrics and their reductions
are float32. Gradients come back float32 through the cast (its transpose), and the optimizer
updates the float32 parameters, as in mixed-precision training everywhere (Micikevicius et
al. 2018; jmp's policies). Batch statistics are not cast, so their moving averages keep
float32's resolution; a layer after a batch norm then computes in float32 again, which costs
speed, not accuracy.

bfloat16 has float32's exponent range, so it needs no loss scaling. float16 would (its
gradients underflow), which is not built here: it is refused.
"""
import jax
import jax.numpy as jnp

from library.errors import UserError

POLICIES = {'float32': None, 'bfloat16': jnp.bfloat16}


def compute_dtype(policy: str):
  """The dtype of the computation (None: float32, nothing cast)."""
  if policy == 'float16':
    raise UserError("precision='float16' needs loss scaling, which is not built: use "
                    "'bfloat16' (float32's range, no scaling needed) or 'float32'")
  if policy not in POLICIES:
    raise UserError(f'precision={policy!r} is not one of {", ".join(POLICIES)}')
  return POLICIES[policy]


def cast_floating(tree, dtype):
  """Every floating array of `tree` as `dtype` (None: unchanged); others as they are."""
  if dtype is None:
    return tree
  return jax.tree.map(
      lambda x: x.astype(dtype) if jnp.issubdtype(jnp.result_type(x), jnp.floating) else x,
      tree)


def to_float32(tree):
  return cast_floating(tree, jnp.float32)
