"""Score an RL submission: the mean return of its 5 checkpoints over 5 seeds x 256 episodes.

    python evaluate.py --env Breakout-MinAtar --max-frames 999 --split validation|test

The submission is `checkpoints/` (exactly 5 `*.pkl` files, as src/train.py writes them) and
`src/` (the network code, `make_model` in networks.py). Evaluation protocol (MLGym-Bench's,
TASKS.md 11-13): for each checkpoint and each of 5 seeds, reset 256 environments with that
seed, run `max_frames` steps with actions *sampled* from the policy, and sum each episode's
rewards up to its first `done`. The score `Reward Mean` is the mean of those 6,400 returns.
Validation uses seeds 0-4 (MLGym's); the test split uses other seeds, 100-104.

What is trusted: the environment, the random keys, the sampling and the sums run here. The
agent's network and checkpoints run in a separate process (policy_server.py) that only ever
sees observations and answers with distribution parameters (logits, or a Gaussian's mean and
scale), so neither its code nor its pickles can touch the rewards or print a result that passes
(the result line carries a token the agent's code cannot read). The same seeds always give the
same score.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from typing import Any

from isolation import kill_everyone_else, no_memory_access, take_secrets

SEEDS = {"validation": [0, 1, 2, 3, 4], "test": [100, 101, 102, 103, 104]}
CHECKPOINTS = 5


class PolicyError(Exception):
    """The submission's policy could not be loaded or misbehaved: the submission is rejected."""


class PolicyServer:
    """The agent's policy in its own process, spoken to through byte frames (never pickles)."""

    def __init__(self, setup: dict[str, Any], load_timeout_s: float, step_timeout_s: float) -> None:
        self.step_timeout_s = step_timeout_s
        to_child, child_in = os.pipe()
        child_out, from_child = os.pipe()
        here = os.path.dirname(os.path.abspath(__file__))
        self.process = subprocess.Popen(
            [sys.executable, os.path.join(here, "policy_server.py"), str(to_child), str(from_child)],
            pass_fds=(to_child, from_child), start_new_session=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("RESEARCHGYM_")},
        )
        os.close(to_child)
        os.close(from_child)
        self.outbox = Connection(child_in, readable=False)
        self.inbox = Connection(child_out, writable=False)
        self.ask(json.dumps(setup).encode(), load_timeout_s, "start (importing src/networks.py)")

    def ask(self, message: bytes, timeout_s: float, doing: str) -> bytes:
        """Send one frame and wait for the answer; a stuck or dead policy process is an error."""
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            self.process.kill()  # unblocks a send into a full pipe as well as the wait

        timer = threading.Timer(timeout_s, expire)
        timer.start()
        try:
            self.outbox.send_bytes(message)
            reply = self.inbox.recv_bytes()
        except (OSError, EOFError):
            if expired.is_set():
                raise PolicyError(f"the policy did not {doing} within {timeout_s:g}s") from None
            code = self.process.wait()
            raise PolicyError(f"the policy process died while asked to {doing} (exit status {code}; "
                              "its output is above)") from None
        finally:
            timer.cancel()
        if reply[:1] == b"E":
            raise PolicyError(reply[1:].decode("utf-8", "replace"))
        return reply

    def load(self, path: str, timeout_s: float) -> None:
        self.ask(b"L" + path.encode(), timeout_s, f"load {path}")

    def act(self, obs: Any) -> bytes:
        return self.ask(b"O" + obs.tobytes(), self.step_timeout_s, "answer a batch of observations")[1:]

    def close(self) -> None:
        try:
            self.outbox.send_bytes(b"Q")
        except OSError:
            pass
        self.process.kill()
        self.process.wait()


def make_rollout(env: Any, env_params: Any, seeds: list[int], envs_per_seed: int, continuous: bool,
                 action_dim: int) -> tuple[Any, Any]:
    """(initial carry, jitted step). The carry holds, per seed and environment, the observation,
    the env state, the seed's random key, the return so far and whether the episode has ended."""
    import jax
    import jax.numpy as jnp

    def start(seed: int) -> Any:
        reset_key, run_key = jax.random.split(jax.random.PRNGKey(seed))
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(reset_key, envs_per_seed), env_params)
        return obs, state, run_key

    starts = [start(seed) for seed in seeds]
    obs, state, keys = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *starts)
    shape = (len(seeds), envs_per_seed)
    carry = (obs, state, keys, jnp.zeros(shape, jnp.float32), jnp.zeros(shape, bool))
    step_env = jax.vmap(jax.vmap(env.step, in_axes=(0, 0, 0, None)), in_axes=(0, 0, 0, None))

    @jax.jit
    def step(carry: Any, policy: jax.Array) -> Any:
        obs, state, keys, returns, done = carry
        split = jax.vmap(lambda key: jax.random.split(key, 3))(keys)
        keys, action_keys, step_keys = split[:, 0], split[:, 1], split[:, 2]
        policy = policy.reshape(*shape, -1)
        if continuous:
            mean, scale = policy[..., :action_dim], policy[..., action_dim:]
            noise = jax.vmap(lambda key: jax.random.normal(key, (envs_per_seed, action_dim)))(action_keys)
            action = mean + scale * noise
        else:
            action = jax.vmap(lambda key, logits: jax.random.categorical(key, logits))(action_keys, policy)
        env_keys = jax.vmap(lambda key: jax.random.split(key, envs_per_seed))(step_keys)
        obs, state, reward, terminated, truncated, _ = step_env(env_keys, state, action, env_params)
        returns = returns + jnp.where(done, 0.0, reward)
        done = done | terminated | truncated
        return obs, state, keys, returns, done

    return carry, step


def check_policy(raw: bytes, rows: int, width: int, continuous: bool) -> Any:
    import numpy as np

    out = np.frombuffer(raw, dtype=np.float32)
    if out.size != rows * width:
        kind = f"(mean, scale) with {width // 2} columns each" if continuous else f"logits with {width} columns"
        raise PolicyError(f"the policy answered {out.size} numbers for {rows} observations; expected {kind} "
                          "per observation (see the contract in src/networks.py)")
    if not np.isfinite(out).all():
        raise PolicyError("the policy output contains NaN or infinity")
    if continuous and (out.reshape(rows, width)[:, width // 2:] <= 0).any():
        raise PolicyError("the policy's scale must be positive")
    return out.reshape(rows, width)


def evaluate(args: argparse.Namespace, files: list[str]) -> dict[str, Any]:
    import gymnax
    import jax
    import numpy as np
    from gymnax.environments import spaces

    env, env_params = gymnax.make(args.env)
    action_space = env.action_space(env_params)
    continuous = isinstance(action_space, spaces.Box)
    action_dim = int(action_space.shape[0]) if continuous else int(action_space.n)
    obs_shape = tuple(env.observation_space(env_params).shape)
    seeds = SEEDS[args.split]
    rows = len(seeds) * args.envs_per_seed
    width = 2 * action_dim if continuous else action_dim
    setup = {"obs_shape": obs_shape, "action_dim": action_dim, "continuous": continuous, "batch": rows}
    server = PolicyServer(setup, args.load_timeout, args.step_timeout)
    initial, step = make_rollout(env, env_params, seeds, args.envs_per_seed, continuous, action_dim)
    means, all_returns = [], []
    try:
        for path in files:
            server.load(path, args.load_timeout)
            carry = initial  # every checkpoint meets the same episodes
            for _ in range(args.max_frames):
                obs = np.asarray(carry[0], dtype=np.float32).reshape(rows, *obs_shape)
                carry = step(carry, check_policy(server.act(obs), rows, width, continuous))
                if bool(jax.device_get(carry[4]).all()):
                    break  # every episode has ended; later rewards would not count
            returns = np.asarray(carry[3], dtype=np.float64).ravel()
            means.append(float(returns.mean()))
            all_returns.append(returns)
    finally:
        server.close()
        kill_everyone_else()
    returns = np.concatenate(all_returns)
    return {"Reward Mean": float(returns.mean()), "Reward Std": float(returns.std()),
            "checkpoint_means": [round(m, 4) for m in means], "episodes": int(returns.size)}


def main() -> None:
    no_memory_access()
    token, _ = take_secrets()
    parser = argparse.ArgumentParser(description="Score checkpoints/ (5 *.pkl) with src/networks.py.")
    parser.add_argument("--env", required=True, help="gymnax environment id")
    parser.add_argument("--max-frames", type=int, required=True, help="steps per evaluation episode")
    parser.add_argument("--split", choices=sorted(SEEDS), default=os.environ.get("RESEARCHGYM_SPLIT", "validation"))
    parser.add_argument("--envs-per-seed", type=int, default=256)
    parser.add_argument("--load-timeout", type=float, default=300.0, help="seconds to import and load one checkpoint")
    parser.add_argument("--step-timeout", type=float, default=60.0, help="seconds for the policy to answer one step")
    args = parser.parse_args()

    def fail(message: str) -> None:
        print(f"evaluation failed: {message}", file=sys.stderr)
        print("\n" + json.dumps({"error": message, "status": "evaluation_error", "token": token}), flush=True)
        sys.exit(1)

    files = sorted(glob.glob("checkpoints/*.pkl"))
    if len(files) != CHECKPOINTS:
        fail(f"expected exactly {CHECKPOINTS} checkpoint files checkpoints/*.pkl (one per training seed, as "
             f"`python src/train.py` writes them), found {len(files)}: {files}")
    if not os.path.isfile("src/networks.py"):
        fail("src/networks.py is missing: the evaluation rebuilds the policy with its make_model")
    try:
        metrics = evaluate(args, files)
    except PolicyError as exc:
        fail(str(exc))
    print("\n" + json.dumps({**metrics, "split": args.split, "token": token}), flush=True)


if __name__ == "__main__":
    main()
