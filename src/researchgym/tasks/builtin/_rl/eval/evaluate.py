"""Score an RL submission: the mean return of its 5 checkpoints over 5 seeds x 256 episodes.

    python evaluate.py --env Breakout-MinAtar --max-frames 999 --split validation|test

The submission is `checkpoints/` (exactly 5 `*.pkl` files, as src/train.py writes them) and
`src/` (the network code, `make_model` in networks.py). Evaluation protocol (MLGym-Bench's,
TASKS.md 11-13): for each checkpoint and each of 5 seeds, reset 256 environments with that
seed, run `max_frames` steps with actions *sampled* from the policy, and sum each episode's
rewards up to its first `done`. The score `Reward Mean` is the mean of those 6,400 returns.
Validation uses seeds 0-4 (MLGym's). The test split's 5 seeds are drawn here, one-way (SHA-256),
from the secret seed researchgym hands this evaluator alone; they are never 0-4 and nothing the
agent can read reveals them (the metrics show only `seeds_fingerprint`, a truncated SHA-256 of
the seeds, which tells two evaluations' episodes apart). Run by hand, the test split draws
fresh seeds each time.

What is trusted: the environment, the random keys, the sampling, the sums and every check run
here, in the evaluator's sandbox, which holds none of the agent's files. The agent's network and
checkpoints run in another sandbox (policy_server.py, which imports src/networks.py and unpickles
the checkpoints there and only there); the two talk through frames (agent_link.py) and that side
only ever sees observations and answers with distribution parameters (logits, or a Gaussian's
mean and scale). Every answer is checked here (exact size, finite numbers, positive scale) within
a deadline, and the result goes to a channel that side cannot write.

The policy must answer each observation as a function of that observation and its checkpoint
alone, as the task says (it "has no memory between steps"): the server is the agent's own
Python, and a policy that remembered what it saw (where an episode's goal was) or shared it
between the five checkpoints (they play the very same episodes) scored 126 on MetaMaze against
a baseline of 28. So the evaluator keeps a sample of what it asked and was answered, one live
row per step and checkpoint, WITNESS_SAMPLES per checkpoint, drawn from the system's random
source, and asks a second, fresh copy of the policy (researchgym's witness: a sandbox of its
own with its own copy of the artefact, which has seen nothing) the same questions once the
rollout is over; every answer must agree within WITNESS_TOLERANCE. Run by hand, the witness is
a second policy_server.py process in this folder.

This evaluator never sees the artefact's files, so it asks: the server lists checkpoints/*.pkl
and says whether src/networks.py exists, the count (5) is enforced here, and each checkpoint is
then loaded by one of the listed names. That side could lie about its files; it gains nothing,
because whatever policy it serves is exactly what is scored. The same seeds always give the
same score.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import secrets
import sys
import threading
import time
from typing import Any

from agent_link import (LINK_VARIABLE, WITNESS_LINK_VARIABLE, AgentLink, LinkError, report, report_error,
                        strict_loads)
from isolation import no_memory_access, take_secrets

VALIDATION_SEEDS = [0, 1, 2, 3, 4]
SEEDS_PER_SPLIT = 5
CHECKPOINTS = 5
#: The largest error frame accepted from the policy server (its message, 20,000 bytes, and a kind).
MAX_ERROR_FRAME = 20_001
#: The largest listing of checkpoints/ accepted.
MAX_LISTING_FRAME = 64 << 10
MAX_NAME = 255
#: Observations per checkpoint the witness answers again, and how far its answers may be from
#: the ones recorded (log-probabilities, or mean and scale, relative to 1 + |value|: the same
#: network on the same observation, in a batch of another size, where a GPU's TF32 matmuls
#: round differently).
WITNESS_SAMPLES = 64
WITNESS_TOLERANCE = 1e-2


class PolicyError(Exception):
    """The submission's policy could not be loaded or misbehaved: the submission is rejected."""


def split_seeds(split: str, seed: int | None) -> list[int]:
    """The environment seeds of a split: MLGym's 0-4 for validation; for the test split, 5
    distinct seeds in [5, 2**31) derived one-way from the evaluation's secret seed."""
    if split == "validation":
        return list(VALIDATION_SEEDS)
    if seed is None:  # run by hand: no secret, so no fixed public test set either
        seed = secrets.randbits(63)
    seeds: list[int] = []
    counter = 0
    while len(seeds) < SEEDS_PER_SPLIT:
        digest = hashlib.sha256(f"researchgym-rl-test-seeds:{seed}:{counter}".encode()).digest()
        value = int.from_bytes(digest[:4], "big") >> 1  # 31 bits: a valid jax.random.PRNGKey seed
        if value not in VALIDATION_SEEDS and value not in seeds:
            seeds.append(value)
        counter += 1
    return seeds


def seeds_fingerprint(seeds: list[int]) -> str:
    """A one-way fingerprint of a seed list (to tell evaluations apart without showing seeds)."""
    return hashlib.sha256(("researchgym-rl-seeds:" + ",".join(map(str, seeds))).encode()).hexdigest()[:16]


def first_pair_equal(values: dict[str, Any]) -> tuple[str, str] | None:
    """The first two names whose values are equal, if any."""
    seen: dict[Any, str] = {}
    for name, value in values.items():
        if value in seen:
            return seen[value], name
        seen[value] = name
    return None


def valid_name(name: Any) -> bool:
    """A plain file name in checkpoints/ as glob('checkpoints/*.pkl') finds them."""
    return (isinstance(name, str) and 4 < len(name) <= MAX_NAME and name.endswith(".pkl")
            and not name.startswith(".") and "/" not in name and "\\" not in name and "\0" not in name
            and name.isprintable())


class PolicyServer:
    """The agent's policy behind the link: every exchange has a deadline and a size limit."""

    def __init__(self, link: AgentLink, load_timeout_s: float, step_timeout_s: float) -> None:
        self.link, self.load_timeout_s, self.step_timeout_s = link, load_timeout_s, step_timeout_s
        self.closed = False

    def exchange(self, payload: bytes, timeout_s: float, limit: int, doing: str, expected: str = "") -> bytes:
        """Send one frame and receive the answer (at most `limit` bytes, or an error message),
        the whole exchange within `timeout_s`. `expected` describes a valid answer, for errors."""
        deadline = time.monotonic() + timeout_s
        try:
            self.link.send(payload, timeout_s)
            reply = self.link.receive(max(deadline - time.monotonic(), 0.001), max(limit, MAX_ERROR_FRAME), doing)
        except LinkError as exc:
            if time.monotonic() >= deadline:
                raise PolicyError(f"the policy did not {doing} within {timeout_s:g}s") from None
            raise PolicyError(f"the policy server failed while asked to {doing}: {exc}{expected}") from None
        if reply[:1] == b"E":
            raise PolicyError(reply[1:].decode("utf-8", "replace"))
        return reply

    def listing(self, setup: dict[str, Any]) -> list[str]:
        """The checkpoint names the server offers, checked: exactly 5 plain `*.pkl` names."""
        reply = self.exchange(json.dumps(setup).encode(), self.load_timeout_s, MAX_LISTING_FRAME,
                              "start (list checkpoints/)")
        listing: Any = None
        if reply[:1] == b"K":
            try:
                listing = strict_loads(reply[1:])
            except (ValueError, RecursionError):  # a UnicodeDecodeError is a ValueError
                pass
        if not (isinstance(listing, dict) and isinstance(listing.get("checkpoints"), list)
                and isinstance(listing.get("networks_py"), bool)):
            raise PolicyError("the policy server's first answer is not a listing of checkpoints/ "
                              "(K and a JSON object with checkpoints and networks_py)")
        names, networks = listing["checkpoints"], listing["networks_py"]
        if not all(valid_name(name) for name in names) or len(set(names)) != len(names):
            raise PolicyError("the policy server listed checkpoint names that are not distinct plain file names "
                              f"ending in .pkl: {json.dumps(names)[:500]}")
        if len(names) != CHECKPOINTS:
            raise PolicyError(f"expected exactly {CHECKPOINTS} checkpoint files checkpoints/*.pkl (one per training "
                              f"seed, as `python src/train.py` writes them), found {len(names)}: "
                              f"{str([f'checkpoints/{name}' for name in names])[:2000]}")
        if not networks:
            raise PolicyError("src/networks.py is missing: the evaluation rebuilds the policy with its make_model")
        digests = listing.get("sha256")
        if isinstance(digests, dict):
            same = first_pair_equal({name: digests.get(name) for name in sorted(names) if digests.get(name)})
            if same:
                raise PolicyError(f"checkpoints/{same[0]} and checkpoints/{same[1]} are the same file: the score "
                                  f"is the mean over {CHECKPOINTS} trainings with different seeds "
                                  "(python src/train.py writes them)")
        return sorted(names)

    def load(self, name: str) -> None:
        path = f"checkpoints/{name}"
        reply = self.exchange(b"L" + name.encode(), self.load_timeout_s, 1, f"load {path}")
        if reply != b"K":
            raise PolicyError(f"the policy server answered the request to load {path} with "
                              f"{reply[:20]!r} instead of K")

    def act(self, checkpoints: list[int], wire: bytes, rows: int, width: int, continuous: bool) -> bytes:
        """The policies of `checkpoints` (indices in load order) on their observations, one
        exchange for all of them: `wire` is the encoding byte and the observations."""
        total = len(checkpoints) * rows
        reply = self.exchange(b"O" + bytes([len(checkpoints), *checkpoints]) + wire, self.step_timeout_s,
                              1 + total * width * 4, "answer a batch of observations",
                              f" ({contract(total, width, continuous)})")
        if reply[:1] != b"A":
            raise PolicyError(f"the policy server answered a batch of observations with a frame of kind "
                              f"{reply[:1]!r} instead of A")
        return reply[1:]

    def close(self) -> None:
        """Once (a second close would close descriptor numbers that may since name other files)."""
        if self.closed:
            return
        self.closed = True
        try:
            self.link.send(b"Q", 1.0)
        except LinkError:
            pass
        self.link.close()


class Sampler:
    """A uniform sample of the questions asked and the answers given, per checkpoint: one live
    row per step, kept by reservoir sampling over the steps (system randomness: the policy cannot
    tell which answers will be checked)."""

    def __init__(self, checkpoints: int, size: int) -> None:
        self.rng = random.SystemRandom()
        self.size = size
        self.offered = [0] * checkpoints
        self.kept: list[list[tuple[int, Any, Any]]] = [[] for _ in range(checkpoints)]

    def offer(self, index: int, frame: int, live: Any, observation_of: Any, answers: Any) -> None:
        """`live`: the rows of checkpoint `index` still playing; `observation_of(row)` gives one
        row's observation; `answers` the checkpoint's answers to this step."""
        if len(live) == 0:
            return
        row = int(live[self.rng.randrange(len(live))])
        self.offered[index] += 1
        kept = self.kept[index]
        slot = len(kept) if len(kept) < self.size else self.rng.randrange(self.offered[index])
        if slot >= self.size:
            return  # not kept: its observation is never fetched
        sample = (frame, observation_of(row), answers[row].copy())
        if slot == len(kept):
            kept.append(sample)
        else:
            kept[slot] = sample


def open_witness(setup: dict[str, Any], names: list[str], args: argparse.Namespace, by_hand: bool) -> Any:
    """A started thread that opens the witness (a fresh copy of the policy), checks it lists the
    same checkpoints, and loads them while the rollout runs; `.server` and `.error` once joined.
    Only run by hand is it started here: in an evaluation, this sandbox holds no agent code."""
    here = os.path.dirname(os.path.abspath(__file__))

    def work() -> None:
        try:
            if not by_hand and WITNESS_LINK_VARIABLE not in os.environ:
                raise PolicyError(f"researchgym gave this evaluator no witness link ({WITNESS_LINK_VARIABLE}): "
                                  "the task's evaluation.agent_code must say `witness: true`")
            link = AgentLink.open([sys.executable, os.path.join(here, "policy_server.py")], WITNESS_LINK_VARIABLE)
            thread.server = PolicyServer(link, args.load_timeout, args.step_timeout)
            listed = thread.server.listing(setup)
            if listed != names:
                raise PolicyError(f"a fresh copy of the artefact lists other checkpoints ({listed}) than the one "
                                  f"evaluated ({names})")
            for name in names:
                thread.server.load(name)
        except Exception as exc:  # PolicyError, or a link researchgym set up badly
            thread.error = exc

    thread = threading.Thread(target=work, daemon=True, name="witness")
    thread.server, thread.error = None, None
    thread.start()
    return thread


def question_witness(witness: Any, names: list[str], sampler: Sampler, setup: dict[str, Any],
                     width: int, continuous: bool) -> None:
    """Ask the witness the sampled questions; PolicyError if an answer differs from the one the
    evaluated policy gave."""
    import numpy as np

    witness.join()
    if witness.error is not None:
        raise PolicyError(f"the witness copy of the policy (a fresh copy of the artefact) failed: {witness.error}")
    batch, size = setup["batch"], int(np.prod(setup["obs_shape"]))
    blocks = np.zeros((len(names), batch, size), np.float32)
    for index, kept in enumerate(sampler.kept):
        for at, (_, observation, _) in enumerate(kept):
            blocks[index, at] = observation
    answer = witness.server.act(list(range(len(names))), b"f" + blocks.tobytes(), batch, width, continuous)
    again = check_policy(answer, len(names) * batch, width, continuous).reshape(len(names), batch, width)
    def compared(answer: Any) -> Any:  # what decides the action: log-probabilities, or mean and scale
        answer = answer.astype(np.float64)
        if continuous:
            return answer
        shifted = answer - answer.max()
        return shifted - np.log(np.exp(shifted).sum())

    for index, kept in enumerate(sampler.kept):
        for at, (frame, _, recorded) in enumerate(kept):
            expected = compared(recorded)
            gap = np.abs(compared(again[index, at]) - expected) / (1.0 + np.abs(expected))
            if float(gap.max()) > WITNESS_TOLERANCE:
                raise PolicyError(
                    f"the policy of checkpoints/{names[index]} answered an observation of step {frame} with "
                    f"{np.round(recorded, 4).tolist()}, and a fresh copy of it (the artefact as submitted, in a "
                    f"sandbox of its own) with {np.round(again[index, at], 4).tolist()}: its answers must depend on "
                    "the observation and its checkpoint alone (no memory between steps, nothing shared between "
                    "checkpoints)")


def make_rollout(env: Any, env_params: Any, seeds: list[int], envs_per_seed: int, continuous: bool,
                 action_dim: int, checkpoints: int) -> tuple[Any, Any, Any]:
    """(initial carry, jitted step, jitted observe) for all checkpoints at once. The carry holds,
    per checkpoint, seed and environment, the observation, the env state, the seed's random key,
    the return so far and whether the episode has ended, checkpoint-major. Every checkpoint
    starts from the same carry (it meets the same episodes, with the same keys); the rows of
    one checkpoint evolve exactly as they would alone, so the batch only saves round trips."""
    import jax
    import jax.numpy as jnp

    reset = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))  # compiled once for the seeds

    def start(seed: int) -> Any:
        reset_key, run_key = jax.random.split(jax.random.PRNGKey(seed))
        obs, state = reset(jax.random.split(reset_key, envs_per_seed), env_params)
        return obs, state, run_key

    starts = [start(seed) for seed in seeds] * checkpoints
    obs, state, keys = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *starts)
    shape = (len(starts), envs_per_seed)
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

    @jax.jit
    def observe(carry: Any) -> Any:
        """What goes on the wire, computed where the carry lives (on the accelerator, if any):
        whether every observation is 0 or 1, those observations as bits (a 32nd of the bytes:
        MinAtar's images are binary), and per checkpoint and row whether its episode has ended."""
        obs = carry[0].reshape(checkpoints, -1)
        binary = jnp.all((obs == 1) | ((obs == 0) & ~jnp.signbit(obs)))  # -0.0 is sent as a float
        return binary, jnp.packbits(obs != 0, axis=1), carry[4].reshape(checkpoints, -1)

    return carry, step, observe


def observation_frame(binary: bool, bits: Any, obs: Any, active: list[int], size: int) -> tuple[bytes, Any]:
    """The encoding byte and the observations of the `active` checkpoints (see policy_server.py):
    their bits when every observation is 0 or 1, else float32, fetched from the device only then;
    and a function (checkpoint, row) -> that row's observation as float32 (for the witness)."""
    import numpy as np

    bits = np.asarray(bits)
    if binary:
        def row_of(index: int, row: int) -> Any:
            return np.unpackbits(bits[index], count=(row + 1) * size)[row * size:].astype(np.float32)

        return b"b" + bits[active].tobytes(), row_of
    host = np.asarray(obs, dtype=np.float32).reshape(len(bits), -1)
    return b"f" + host[active].tobytes(), lambda index, row: host[index, row * size:(row + 1) * size].copy()


def contract(rows: int, width: int, continuous: bool) -> str:
    kind = f"(mean, scale) with {width // 2} columns each" if continuous else f"logits with {width} columns"
    return (f"expected {kind} per observation, {rows * width} float32 numbers in all (see the contract in "
            "src/networks.py)")


def check_policy(raw: bytes, rows: int, width: int, continuous: bool) -> Any:
    """The policy's answer as a (rows, width) float32 array, or PolicyError: exactly the
    expected size, finite, and for a Gaussian a positive scale."""
    import numpy as np

    if len(raw) != rows * width * 4:
        raise PolicyError(f"the policy answered {len(raw) / 4:g} numbers ({len(raw)} bytes) for {rows} "
                          f"observations; {contract(rows, width, continuous)}")
    out = np.frombuffer(raw, dtype=np.float32).reshape(rows, width)
    if not np.isfinite(out).all():
        raise PolicyError("the policy output contains NaN or infinity")
    if continuous and (out[:, width // 2:] <= 0).any():
        raise PolicyError("the policy's scale must be positive")
    return out


def use_compile_cache(jax: Any) -> None:
    """Keep what JAX compiles here in the folder researchgym hands this evaluator (its copy of
    earlier evaluations' programs; researchgym/compile_cache.py), every program however quick to
    compile. Only this sandbox writes that copy: the policy server never sees it. The cache
    changes how long an evaluation takes, never what it computes."""
    folder = os.environ.get("RESEARCHGYM_EVALUATOR_CACHE")
    if folder and os.path.isdir(folder):
        jax.config.update("jax_compilation_cache_dir", folder)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def evaluate(args: argparse.Namespace, seed: int | None) -> dict[str, Any]:
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    import gymnax
    import jax
    use_compile_cache(jax)
    import numpy as np
    from gymnax.environments import spaces

    env, env_params = gymnax.make(args.env)
    action_space = env.action_space(env_params)
    continuous = isinstance(action_space, spaces.Box)
    action_dim = int(action_space.shape[0]) if continuous else int(action_space.n)
    obs_shape = tuple(env.observation_space(env_params).shape)
    seeds = split_seeds(args.split, seed)
    rows = len(seeds) * args.envs_per_seed
    width = 2 * action_dim if continuous else action_dim
    setup = {"obs_shape": obs_shape, "action_dim": action_dim, "continuous": continuous, "batch": rows}
    here = os.path.dirname(os.path.abspath(__file__))
    by_hand = LINK_VARIABLE not in os.environ  # (AgentLink.open takes the variable away)
    server = PolicyServer(AgentLink.open([sys.executable, os.path.join(here, "policy_server.py")]),
                          args.load_timeout, args.step_timeout)
    witness = None
    try:
        names = server.listing(setup)
        witness = open_witness({**setup, "batch": WITNESS_SAMPLES}, names, args, by_hand)  # loads meanwhile
        for name in names:  # all loaded now, then played side by side: one exchange per step
            server.load(name)
        carry, step, observe = make_rollout(env, env_params, seeds, args.envs_per_seed, continuous, action_dim,
                                            len(names))
        active = list(range(len(names)))
        policy = np.zeros((len(names), rows, width), np.float32)  # an ended checkpoint's rows count for nothing
        sampler = Sampler(len(names), WITNESS_SAMPLES)
        size = int(np.prod(obs_shape))
        for frame in range(args.max_frames):
            binary, bits, done = jax.device_get(observe(carry))
            active = [index for index in active if not done[index].all()]
            if not active:
                break  # every episode has ended; later rewards would not count
            wire, row_of = observation_frame(binary, bits, carry[0], active, size)
            answer = server.act(active, wire, rows, width, continuous)
            answers = check_policy(answer, len(active) * rows, width, continuous).reshape(len(active), rows, width)
            for at, index in enumerate(active):
                sampler.offer(index, frame, np.flatnonzero(~done[index]),
                              lambda row, index=index: row_of(index, row), answers[at])
            if frame == 0:  # the same first observations for every checkpoint
                same = first_pair_equal({names[index]: answers[at].tobytes() for at, index in enumerate(active)})
                if same:
                    raise PolicyError(
                        f"checkpoints/{same[0]} and checkpoints/{same[1]} act identically on the same "
                        f"observations: the score is the mean over {CHECKPOINTS} trainings with different "
                        "seeds, and a network that ignores its checkpoint's parameters, or the same "
                        "training saved twice, is not that")
            policy[active] = answers
            carry = step(carry, policy)
        all_returns = np.asarray(carry[3], dtype=np.float64).reshape(len(names), -1)
        means = [float(returns.mean()) for returns in all_returns]
        server.close()  # done with: only then does the witness hear the questions
        question_witness(witness, names, sampler, {**setup, "batch": WITNESS_SAMPLES}, width, continuous)
    finally:
        server.close()
        if witness is not None and witness.server is not None:
            witness.server.close()
    returns = np.concatenate(all_returns)
    return {"Reward Mean": float(returns.mean()), "Reward Std": float(returns.std()),
            "checkpoint_means": [round(m, 4) for m in means], "episodes": int(returns.size),
            "seeds_fingerprint": seeds_fingerprint(seeds)}


def main() -> None:
    no_memory_access()
    _, seed = take_secrets()
    parser = argparse.ArgumentParser(description="Score checkpoints/ (5 *.pkl) with src/networks.py.")
    parser.add_argument("--env", required=True, help="gymnax environment id")
    parser.add_argument("--max-frames", type=int, required=True, help="steps per evaluation episode")
    parser.add_argument("--split", choices=["validation", "test"],
                        default=os.environ.get("RESEARCHGYM_SPLIT", "validation"))
    parser.add_argument("--envs-per-seed", type=int, default=256)
    parser.add_argument("--load-timeout", type=float, default=300.0,
                        help="seconds to import src/networks.py and load one checkpoint")
    parser.add_argument("--step-timeout", type=float, default=60.0,
                        help="seconds for the policy to answer one step (of every checkpoint still playing)")
    args = parser.parse_args()
    try:
        metrics = evaluate(args, seed)
    except PolicyError as exc:
        report_error(str(exc), "evaluation_error")
        sys.exit(1)
    report({**metrics, "split": args.split})


if __name__ == "__main__":
    main()
