"""The agent's side of the RL evaluation: serves the submitted policy, nothing else.

In an evaluation this runs in a sandbox of its own that holds the artefact (`checkpoints/`,
`src/`) and this task's public files, and nothing else: no environment state, no rewards, no
random keys, no seeds, no result channel. It imports the agent's `src/networks.py`, loads one
checkpoint at a time (unpickling runs code, so it happens here and only here, never in the
evaluator) and answers each batch of observations with the policy's distribution parameters.
Run by hand, evaluate.py starts it as a subprocess in the workspace.

Protocol: frames over stdin/stdout (see agent_link.py; the evaluator never unpickles anything).
  evaluator -> here: first a JSON setup frame, then b"L" + a checkpoint's file name (one this
  server listed; the evaluator loads all of them before the first step), b"O" + a batch of
  observations for some of the loaded checkpoints, or b"Q" to stop;
  here -> evaluator: to the setup, b"K" + JSON {"checkpoints": sorted names of
  checkpoints/*.pkl, "networks_py": whether src/networks.py exists}; to a load, b"K"; to
  observations, b"A" + float32 array (logits, or mean then scale); or b"E" + an error message,
  after which this process exits. src/networks.py is imported at the first load.
  An observation frame: b"O", a count k, k checkpoint indices (in load order, one byte each),
  an encoding byte, then k blocks of `batch` observations, one block per checkpoint: float32
  (b"f"), or (b"b") bits, most significant first, each block padded to whole bytes, for
  observations whose every number is 0 or 1 (MinAtar's images), which the policy receives as
  the same float32 0.0 and 1.0. The answer holds the k checkpoints' outputs in that order.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import json
import math
import os
import pickle
import sys
import traceback
from typing import Any, Callable

from agent_link import AgentEnd

#: The longest error message sent (in bytes; the evaluator accepts a little more).
MAX_MESSAGE = 20_000


def list_checkpoints() -> list[str]:
    return sorted(os.path.basename(path) for path in glob.glob("checkpoints/*.pkl"))


def file_digest(path: str) -> str:
    """SHA-256 of a checkpoint's bytes: the evaluator refuses two identical ones."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return ""  # unreadable: its load fails with the reason
    return digest.hexdigest()


def apply_policy(model: Any, continuous: bool, params: Any, obs: Any) -> Any:
    """The policy's output for a batch of observations: logits, or mean and scale side by side."""
    import jax.numpy as jnp

    _, policy = model.apply(params, obs)
    if continuous:
        mean, scale = policy
        return jnp.concatenate([mean, scale], axis=-1)
    return policy


@functools.lru_cache(maxsize=1)
def apply_jitted() -> Callable[..., Any]:
    """apply_policy compiled with the model as a static argument: the five checkpoints of one
    network config are compiled once, not five times."""
    import jax

    return jax.jit(apply_policy, static_argnums=(0, 1))


def load_policy(path: str, make_model: Callable[..., Any], setup: dict[str, Any]) -> Callable[[Any], Any]:
    """A jitted function from a batch of observations to the flat float32 policy output."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    with open(path, "rb") as handle:
        checkpoint = pickle.load(handle)
    if not isinstance(checkpoint, dict) or not {"network", "train_config"} <= set(checkpoint):
        found = sorted(map(str, checkpoint)) if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise ValueError(f"{path} must hold a dict with the keys log_steps, log_return, network and "
                         f"train_config (as src/train.py saves it); found {found}")
    try:
        network_config = dict(checkpoint["train_config"]["network_config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: train_config has no network_config mapping ({exc!r})") from None
    continuous = setup["continuous"]
    model = make_model(network_config, setup["action_dim"], continuous)
    params = jax.tree_util.tree_map(jnp.asarray, checkpoint["network"])
    try:
        hash(model)
        act = functools.partial(apply_jitted(), model, continuous)  # equal models share one compilation
    except TypeError:  # a model that cannot be a static argument gets a compilation of its own
        act = jax.jit(functools.partial(apply_policy, model, continuous))

    def respond(obs: Any) -> Any:
        return np.asarray(act(params, obs), dtype=np.float32)

    # Compile now, on a batch of the evaluation's shape: a network that does not fit its
    # checkpoint fails here, as a load error, not in the middle of a rollout.
    respond(np.zeros((setup["batch"], *setup["obs_shape"]), np.float32))
    return respond


def main() -> None:
    end = AgentEnd.from_stdio()  # from here on, prints of the agent's code go to stderr

    def fail(message: str) -> None:
        end.send(b"E" + message.encode("utf-8", "replace")[:MAX_MESSAGE])

    import jax  # noqa: F401  (while the evaluator starts up too: the load is then quicker)

    setup = end.receive_json()
    if setup is None:
        return
    names = list_checkpoints()
    digests = {name: file_digest(f"checkpoints/{name}") for name in names}  # before any agent code runs
    end.send(b"K" + json.dumps({"checkpoints": names, "networks_py": os.path.isfile("src/networks.py"),
                                "sha256": digests}).encode())
    import numpy as np

    make_model: Callable[..., Any] | None = None
    policies: list[Callable[[Any], Any]] = []  # in load order
    obs_shape = tuple(setup["obs_shape"])
    while True:
        message = end.receive()
        if message is None:
            return
        kind, body = message[:1], message[1:]
        if kind == b"L":
            name = body.decode("utf-8", "replace")
            if name not in names:
                fail(f"asked to load {name!r}, which is not one of the checkpoints listed: {names}")
                return
            path = f"checkpoints/{name}"
            if make_model is None:
                sys.path.insert(0, os.path.abspath("src"))
                try:
                    from networks import make_model  # the agent's code
                except BaseException:
                    fail("could not import make_model from src/networks.py:\n" + traceback.format_exc(limit=6))
                    return
            try:
                policies.append(load_policy(path, make_model, setup))
            except BaseException:
                fail(f"could not load {path}:\n" + traceback.format_exc(limit=6))
                return
            end.send(b"K")
        elif kind == b"O" and policies:
            try:
                batches = observations(body, len(policies), setup["batch"], obs_shape)
            except ValueError as exc:
                fail(f"malformed observation frame: {exc}")
                return
            try:
                out = [policies[index](obs) for index, obs in batches]
            except BaseException:
                fail("the policy failed on a batch of observations:\n" + traceback.format_exc(limit=6))
                return
            end.send(b"A" + b"".join(part.tobytes() for part in out))
        else:
            return


def observations(body: bytes, loaded: int, batch: int, obs_shape: tuple[int, ...]) -> list[tuple[int, Any]]:
    """An observation frame's (checkpoint index, float32 observations) pairs (see the protocol above)."""
    import numpy as np

    count = body[0] if body else 0
    indices, encoding, data = list(body[1:1 + count]), body[1 + count:2 + count], body[2 + count:]
    if not count or len(indices) != count or any(index >= loaded for index in indices):
        raise ValueError(f"checkpoint indices {indices} for {loaded} loaded checkpoints")
    numbers = batch * math.prod(obs_shape)
    if encoding == b"f" and len(data) == count * numbers * 4:
        blocks = np.frombuffer(data, dtype=np.float32).reshape(count, numbers)
    elif encoding == b"b" and len(data) == count * -(-numbers // 8):
        packed = np.frombuffer(data, dtype=np.uint8).reshape(count, -1)
        blocks = np.unpackbits(packed, axis=1, count=numbers).astype(np.float32)
    else:
        raise ValueError(f"encoding {encoding!r} with {len(data)} bytes for {count} blocks of {numbers} numbers")
    return [(index, block.reshape(batch, *obs_shape)) for index, block in zip(indices, blocks)]


if __name__ == "__main__":
    main()
