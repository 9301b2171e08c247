"""The actor-critic network. Keep the class name `Model` and the function `make_model`: the
evaluation rebuilds your policy with them, from the `network_config` saved in each checkpoint.

What the evaluation needs from `Model.apply(params, obs)` for a batch of observations:
a pair `(value, policy)` where `policy` is
  - for discrete actions: logits of shape (batch, num_actions);
  - for continuous actions: a pair `(mean, scale)`, each (batch, action_dim), scale > 0, for a
    diagonal Gaussian.
The evaluation samples actions from that distribution itself, with its own random keys.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


def small_uniform_bias(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
    """Biases start uniform on [0, 0.05), as in the gymnax-blines baselines."""
    return jax.random.uniform(key, shape, dtype, 0.0, 0.05)


class Model(nn.Module):
    """Separate MLP towers for the critic and the actor."""

    num_output_units: int
    num_hidden_units: int
    num_hidden_layers: int
    continuous: bool
    flatten_3d: bool = False
    min_std: float = 0.001

    def _tower(self, x: jax.Array, name: str) -> jax.Array:
        for layer in range(self.num_hidden_layers):
            x = nn.relu(nn.Dense(self.num_hidden_units, bias_init=small_uniform_bias, name=f"{name}_{layer}")(x))
        return x

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, Any]:
        x = obs.astype(jnp.float32)
        if self.flatten_3d:  # image observations (H, W, C) become vectors
            x = x.reshape(x.shape[:-3] + (-1,))
        value = nn.Dense(1, bias_init=small_uniform_bias, name="critic_out")(self._tower(x, "critic"))[..., 0]
        hidden = self._tower(x, "actor")
        if self.continuous:
            mean = nn.Dense(self.num_output_units, bias_init=small_uniform_bias, name="actor_mean")(hidden)
            raw_scale = nn.Dense(self.num_output_units, bias_init=small_uniform_bias, name="actor_scale")(hidden)
            return value, (mean, jax.nn.softplus(raw_scale) + self.min_std)
        logits = nn.Dense(self.num_output_units, bias_init=small_uniform_bias, name="actor_logits")(hidden)
        return value, logits


def make_model(network_config: dict[str, Any], action_dim: int, continuous: bool) -> Model:
    """Build the network described by `network_config` (num_hidden_units, num_hidden_layers,
    optional flatten_3d) for an environment with `action_dim` actions."""
    return Model(
        num_output_units=action_dim,
        num_hidden_units=int(network_config["num_hidden_units"]),
        num_hidden_layers=int(network_config["num_hidden_layers"]),
        continuous=continuous,
        flatten_3d=bool(network_config.get("flatten_3d", False)),
    )
