"""The agent's side of the RL evaluation: serves the submitted policy, nothing else.

Started by evaluate.py as a separate process. It imports the agent's `src/networks.py`, loads
one checkpoint at a time (unpickling runs code, so it happens here, never in the evaluator) and
answers each batch of observations with the policy's distribution parameters. It never sees
the environment's state, the rewards, the random keys or the result token.

Protocol (multiprocessing Connection byte frames; the evaluator never unpickles anything):
  evaluator -> here: first a JSON setup frame, then b"L" + checkpoint path, b"O" + float32
  observations, or b"Q" to stop;
  here -> evaluator: b"K" (ready / loaded), b"A" + float32 array (logits, or mean then scale),
  or b"E" + an error message, after which this process exits.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import traceback
from multiprocessing.connection import Connection
from typing import Any, Callable


def load_policy(path: str, make_model: Callable[..., Any], setup: dict[str, Any]) -> Callable[[Any], Any]:
    """A jitted function from a batch of observations to the flat float32 policy output."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    with open(path, "rb") as handle:
        checkpoint = pickle.load(handle)
    if not isinstance(checkpoint, dict) or not {"network", "train_config"} <= set(checkpoint):
        found = sorted(checkpoint) if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise ValueError(f"{path} must hold a dict with the keys log_steps, log_return, network and "
                         f"train_config (as src/train.py saves it); found {found}")
    try:
        network_config = dict(checkpoint["train_config"]["network_config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: train_config has no network_config mapping ({exc!r})") from None
    continuous = setup["continuous"]
    model = make_model(network_config, setup["action_dim"], continuous)
    params = jax.tree_util.tree_map(jnp.asarray, checkpoint["network"])

    @jax.jit
    def act(params: Any, obs: jax.Array) -> jax.Array:
        _, policy = model.apply(params, obs)
        if continuous:
            mean, scale = policy
            return jnp.concatenate([mean, scale], axis=-1)
        return policy

    def respond(obs: Any) -> Any:
        return np.asarray(act(params, obs), dtype=np.float32)

    # Compile now, on a batch of the evaluation's shape: a network that does not fit its
    # checkpoint fails here, as a load error, not in the middle of a rollout.
    respond(np.zeros((setup["batch"], *setup["obs_shape"]), np.float32))
    return respond


def main() -> None:
    inbox = Connection(int(sys.argv[1]), writable=False)
    outbox = Connection(int(sys.argv[2]), readable=False)
    os.dup2(2, 1)  # prints from the agent's code go to stderr, never into the protocol
    sys.stdout = sys.stderr

    def fail(message: str) -> None:
        outbox.send_bytes(b"E" + message.encode("utf-8", "replace")[:20_000])

    setup = json.loads(inbox.recv_bytes())
    sys.path.insert(0, os.path.abspath("src"))
    try:
        import numpy as np

        from networks import make_model  # the agent's code
    except BaseException:
        fail("could not import make_model from src/networks.py:\n" + traceback.format_exc(limit=6))
        return
    outbox.send_bytes(b"K")
    respond: Callable[[Any], Any] | None = None
    obs_shape = tuple(setup["obs_shape"])
    while True:
        message = inbox.recv_bytes()
        kind, body = message[:1], message[1:]
        if kind == b"L":
            path = body.decode()
            try:
                respond = load_policy(path, make_model, setup)
            except BaseException:
                fail(f"could not load {path}:\n" + traceback.format_exc(limit=6))
                return
            outbox.send_bytes(b"K")
        elif kind == b"O" and respond is not None:
            try:
                out = respond(np.frombuffer(body, dtype=np.float32).reshape((-1, *obs_shape)))
            except BaseException:
                fail("the policy failed on a batch of observations:\n" + traceback.format_exc(limit=6))
                return
            outbox.send_bytes(b"A" + out.tobytes())
        else:
            return


if __name__ == "__main__":
    main()
