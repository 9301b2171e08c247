"""Reading the YAML config and writing checkpoints in the format the evaluation expects."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import jax
import numpy as np
import yaml

REQUIRED_KEYS = (
    "env_name",
    "num_train_steps",
    "evaluate_every_epochs",
    "num_test_rollouts",
    "num_train_envs",
    "max_grad_norm",
    "gamma",
    "n_steps",
    "n_minibatch",
    "lr_begin",
    "lr_end",
    "lr_warmup",
    "epoch_ppo",
    "clip_eps",
    "gae_lambda",
    "entropy_coeff",
    "critic_coeff",
    "network_name",
    "network_config",
)
REQUIRED_NETWORK_KEYS = ("num_hidden_units", "num_hidden_layers")


def _to_number(value: Any) -> Any:
    """PyYAML follows YAML 1.1, which reads `6e-04` and `5e-4` as strings (it wants a dot and a
    signed exponent). Turn every string that parses as a float back into one, recursively."""
    if isinstance(value, dict):
        return {key: _to_number(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_to_number(item) for item in value]
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def load_config(path: str | Path) -> dict[str, Any]:
    """Return the `train_config` mapping of the YAML file at `path`, with numbers parsed and the
    required keys checked, so a typo fails here with a clear message rather than deep in JAX."""
    path = Path(path)
    with path.open() as handle:
        document = yaml.safe_load(handle)
    if not isinstance(document, dict) or not isinstance(document.get("train_config"), dict):
        raise ValueError(f"{path}: expected a top-level 'train_config' mapping")
    config = _to_number(document["train_config"])
    for key in REQUIRED_KEYS:
        if key not in config:
            raise KeyError(f"{path}: train_config is missing the required key '{key}'")
    if not isinstance(config["network_config"], dict):
        raise ValueError(f"{path}: train_config.network_config must be a mapping")
    for key in REQUIRED_NETWORK_KEYS:
        if key not in config["network_config"]:
            raise KeyError(f"{path}: train_config.network_config is missing the required key '{key}'")
    return config


def save_checkpoint(
    path: str | Path,
    log_steps: list[int],
    log_return: list[float],
    params: Any,
    train_config: dict[str, Any],
) -> None:
    """Pickle one trained run. The evaluation rebuilds the network from
    `train_config["network_config"]` and loads `network`, so both must be plain Python/numpy."""
    checkpoint = {
        "log_steps": [int(step) for step in log_steps],
        "log_return": [float(value) for value in log_return],
        "network": jax.tree_util.tree_map(np.asarray, jax.device_get(params)),
        "train_config": dict(train_config),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        pickle.dump(checkpoint, handle)
