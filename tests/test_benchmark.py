"""scripts/benchmark.py's own logic (the measurements themselves are run by hand)."""
import math

import jax
import jax.numpy as jnp

from scripts import benchmark


def test_compile_phases_are_the_first_compilation_of_the_named_step():
  jax.monitoring.register_event_duration_secs_listener(benchmark._record_phase)  # pylint: disable=protected-access

  def train_step(x):
    return jnp.sin(x) * 2.0

  def other(x):
    return jnp.cos(x)

  def run():
    step = jax.jit(train_step)
    step(jnp.ones(3))
    jax.jit(other)(jnp.ones(3))
    step(jnp.ones(5))       # a second compilation (a last partial batch): not the first step's
    return 'done'

  result, phases = benchmark._compile_phases(run, 'train_step')  # pylint: disable=protected-access
  assert result == 'done'
  assert set(phases) == {'trace_s', 'lower_s', 'compile_s'}
  assert all(0 < v < 60 for v in phases.values()), phases
  firsts = [s for p, name, s in benchmark._phase_log if p == 'compile' and 'train_step' in name]  # pylint: disable=protected-access
  assert len(firsts) >= 2 and phases['compile_s'] == firsts[-2]
  _, missing = benchmark._compile_phases(lambda: None, 'train_step')  # pylint: disable=protected-access
  assert all(math.isnan(v) for v in missing.values())
