"""The three RL tasks: the PPO baseline trains and is scored end to end through the env, bad
checkpoints are an evaluation_error, the score is deterministic, and the submitted code cannot
change its own score."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

if importlib.util.find_spec("gymnax") is None:  # checked without importing JAX into this process
    pytest.skip("the rl extra is not installed", allow_module_level=True)

import researchgym  # noqa: E402
from researchgym.evaluation import evaluate  # noqa: E402
from researchgym.tasks.registry import BUILTIN_DIR  # noqa: E402

TASKS = ["rl-mountain-car-continuous-cpu", "rl-breakout-minatar-cpu", "rl-meta-maze-cpu"]
STARTER = BUILTIN_DIR / "_rl" / "starter"

# A budget of two PPO updates, for tests: proves the pipeline, not the learning.
TINY = (
    "python - <<'PYEOF'\n"
    "import yaml\n"
    "config = yaml.safe_load(open('src/config.yaml'))\n"
    "c = config['train_config']\n"
    "c.update(num_train_envs=16, n_steps=8, n_minibatch=2, epoch_ppo=1, num_test_rollouts=8,\n"
    "         evaluate_every_epochs=1000, num_train_steps=16 * 8 * 2)\n"
    "c['network_config']['num_hidden_units'] = 16\n"
    "yaml.safe_dump(config, open('src/tiny.yaml', 'w'))\n"
    "PYEOF"
)


MAKE_CHECKPOINTS = """
import pickle, sys
import jax, jax.numpy as jnp
sys.path.insert(0, sys.argv[1])
from networks import make_model
folder, obs_shape, action_dim, continuous, flatten = sys.argv[2], eval(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1", sys.argv[6] == "1"
network_config = {"num_hidden_units": 16, "num_hidden_layers": 2, "flatten_3d": flatten}
model = make_model(network_config, action_dim, continuous)
for seed in range(5):
    params = jax.device_get(model.init(jax.random.PRNGKey(seed), jnp.zeros((1, *obs_shape))))
    with open(f"{folder}/checkpoints/config-42-{seed}.pkl", "wb") as handle:
        pickle.dump({"log_steps": [0], "log_return": [0.0], "network": params,
                     "train_config": {"network_config": network_config}}, handle)
"""


def untrained_checkpoints(task_id: str, folder: Path) -> None:
    """A submission without training: src/ from the starter, checkpoints from freshly
    initialised networks (fast, and a valid artefact). Built in a child process: JAX is
    multithreaded, and a test process that imported it must not fork later (the Ray tests do)."""
    shutil.copytree(STARTER, folder / "src", dirs_exist_ok=True)
    (folder / "checkpoints").mkdir(exist_ok=True)
    shapes = {
        "rl-mountain-car-continuous-cpu": ((2,), 1, True, False),
        "rl-breakout-minatar-cpu": ((10, 10, 4), 3, False, True),
        "rl-meta-maze-cpu": ((15,), 4, False, False),
    }
    obs_shape, action_dim, continuous, flatten = shapes[task_id]
    subprocess.run(
        [
            sys.executable,
            "-c",
            MAKE_CHECKPOINTS,
            str(STARTER),
            str(folder),
            repr(obs_shape),
            str(action_dim),
            str(int(continuous)),
            str(int(flatten)),
        ],
        check=True,
    )


@pytest.mark.slow
@pytest.mark.parametrize("task_id", TASKS)
def test_the_baseline_trains_at_a_tiny_budget_and_is_scored_through_the_env(task_id):
    env = researchgym.make(task_id)
    env.reset(seed=0)
    env.step(TINY)
    trained, *_ = env.step("python src/train.py --config src/tiny.yaml")
    assert "Traceback" not in trained and "timed out" not in trained, trained
    listing, *_ = env.step("ls checkpoints")
    assert listing.split()[:5] == [f"tiny-42-{i}.pkl" for i in range(5)]
    validated, *_ = env.step("validate")
    assert "Validation score: Reward Mean" in validated, validated
    _, _, terminated, _, info = env.step("submit")
    env.close()
    assert terminated and info["exit_status"] == "submitted", info["scores"]
    validation = info["scores"][0]["validation"]["metrics"]
    assert validation["episodes"] == 5 * 5 * 256 and len(validation["checkpoint_means"]) == 5
    final = info["scores"][-1]["test"]
    assert final["metrics"]["split"] == "test" and final["value"] == final["value"]  # a number, not NaN
    assert info["scores"][0]["test"]["metrics"]["split"] == "test"  # the validated copy, scored at the end


@pytest.mark.parametrize("task_id", ["rl-breakout-minatar-cpu", "rl-mountain-car-continuous-cpu"])
def test_the_score_is_deterministic_for_its_seeds(task_id, tmp_path):
    untrained_checkpoints(task_id, tmp_path)
    task = researchgym.load_task(task_id)
    first = evaluate(task, tmp_path, split="validation", seed=1)
    again = evaluate(task, tmp_path, split="validation", seed=2)
    test = evaluate(task, tmp_path, split="test", seed=1)
    assert first.metrics == again.metrics
    assert first.metrics["episodes"] == 6400
    assert test.metrics["Reward Mean"] != first.metrics["Reward Mean"]  # other seeds, other episodes


def test_the_compile_cache_changes_the_time_never_the_score(tmp_path, monkeypatch):
    """Without a cache, with an empty one and with the programs the first evaluation kept: the
    same metrics to the last digit; the evaluator's programs are kept in the task's folder."""
    from researchgym.compile_cache import entries, evaluator_digest

    untrained_checkpoints("rl-breakout-minatar-cpu", tmp_path / "submission")
    task = researchgym.load_task("rl-breakout-minatar-cpu")
    monkeypatch.setenv("RESEARCHGYM_COMPILE_CACHE", "off")
    plain = evaluate(task, tmp_path / "submission", split="validation", seed=1)
    monkeypatch.setenv("RESEARCHGYM_COMPILE_CACHE", str(tmp_path / "cache"))
    cold = evaluate(task, tmp_path / "submission", split="validation", seed=1)
    kept = dict(entries(tmp_path / "cache" / evaluator_digest(task)))
    warm = evaluate(task, tmp_path / "submission", split="validation", seed=1)
    assert plain.metrics == cold.metrics == warm.metrics
    assert len(kept) >= 3 and all(name.endswith("-cache") for name in kept), kept
    assert "persistent compilation cache" not in warm.output_tail  # no entry failed to load
    assert dict(entries(tmp_path / "cache" / evaluator_digest(task))) == kept  # the same programs, the same keys


@pytest.mark.parametrize("task_id", ["rl-breakout-minatar-cpu", "rl-mountain-car-continuous-cpu"])
def test_each_checkpoint_is_scored_as_if_it_were_played_alone(task_id, tmp_path):
    """The five checkpoints are rolled out side by side in one batch: moving checkpoint files
    around moves their means with them and changes nothing else."""
    untrained_checkpoints(task_id, tmp_path)
    task = researchgym.load_task(task_id)
    before = evaluate(task, tmp_path, split="validation", seed=0).metrics
    assert len(set(before["checkpoint_means"])) == 5  # distinct policies: a mix-up would show
    files = [tmp_path / "checkpoints" / f"config-42-{index}.pkl" for index in range(5)]
    contents = [path.read_bytes() for path in files]
    order = [3, 0, 1, 4, 2]  # file i now holds what file order[i] held
    for path, source in zip(files, order):
        path.write_bytes(contents[source])
    after = evaluate(task, tmp_path, split="validation", seed=0).metrics
    assert after["checkpoint_means"] == [before["checkpoint_means"][source] for source in order]
    assert after["Reward Mean"] == pytest.approx(before["Reward Mean"], rel=1e-12)


ROUND_TRIP = """
import json, sys
import gymnax, jax, jax.numpy as jnp, numpy as np
sys.path[:0] = sys.argv[1:3]
import evaluate, policy_server
env, params = gymnax.make(sys.argv[3])
space = env.action_space(params)
continuous = hasattr(space, "shape") and len(space.shape) > 0
width = int(space.shape[0]) if continuous else int(space.n)
obs_shape = tuple(env.observation_space(params).shape)
carry, step, observe = evaluate.make_rollout(env, params, [0, 1], 4, continuous, width, 3)
size = int(np.prod(obs_shape))
seen = []
for frame in range(3):
    binary, bits, done = jax.device_get(observe(carry))
    assert done.shape == (3, 8)
    floats = np.asarray(carry[0], np.float32).reshape(3, 8, *obs_shape)
    wire, row_of = evaluate.observation_frame(binary, bits, carry[0], [0, 2], size)
    frame_bytes = bytes([2, 0, 2]) + wire
    parsed = policy_server.observations(frame_bytes, 3, 8, obs_shape)
    assert [index for index, _ in parsed] == [0, 2]
    for index, obs in parsed:
        assert obs.dtype == np.float32 and obs.tobytes() == floats[index].tobytes(), (frame, index)
        for row in range(8):  # what the witness is asked again: the very row the policy got
            assert row_of(index, row).tobytes() == obs[row].reshape(-1).tobytes(), (frame, index, row)
    seen.append(frame_bytes[3:4].decode())
    policy = np.tile(np.linspace(0.1, 1.0, (2 if continuous else 1) * width, dtype=np.float32), (3, 8, 1))
    carry = step(carry, policy)
# a negative zero is not a 0 bit: such a batch goes as floats, and arrives as -0.0
signed = carry[0].at[(0,) * carry[0].ndim].set(-0.0).at[(1,) * carry[0].ndim].set(1.0)
binary, bits, _ = jax.device_get(observe((signed, *carry[1:])))
wire, row_of = evaluate.observation_frame(binary, bits, signed, [1], size)
frame_bytes = bytes([1, 1]) + wire
[(index, obs)] = policy_server.observations(frame_bytes, 3, 8, obs_shape)
assert obs.tobytes() == np.asarray(signed, np.float32).reshape(3, 8, *obs_shape)[1].tobytes()
assert row_of(1, 0).tobytes() == obs[0].reshape(-1).tobytes()
print(json.dumps({"encodings": seen, "signed": frame_bytes[2:3].decode()}))
"""


@pytest.mark.parametrize(
    "env_id, encodings",
    [
        ("Breakout-MinAtar", "bbb"),
        ("MountainCarContinuous-v0", "fff"),
        ("MetaMaze-misc", "bbf"),  # binary until its time and reward features are not
    ],
)
def test_the_policy_receives_exactly_the_observations_the_evaluator_holds(env_id, encodings):
    """Binary observations travel as bits, others as float32; either way the policy gets the
    same float32 numbers, for the checkpoints asked and in their order, and -0.0 stays -0.0."""
    eval_dir = BUILTIN_DIR / "_rl" / "eval"
    done = subprocess.run(
        [sys.executable, "-c", ROUND_TRIP, str(eval_dir), str(BUILTIN_DIR / "_shared"), env_id],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"encodings": list(encodings), "signed": "f"}


def test_a_malformed_observation_frame_is_refused():
    sys.path[:0] = [p for p in (str(BUILTIN_DIR / "_rl" / "eval"), str(BUILTIN_DIR / "_shared")) if p not in sys.path]
    spec = importlib.util.spec_from_file_location(
        "rl_policy_server_for_tests", BUILTIN_DIR / "_rl" / "eval" / "policy_server.py"
    )
    assert spec is not None and spec.loader is not None
    server = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(server)
    good = bytes([2, 1, 0]) + b"b" + bytes(8)  # 2 blocks of 2 x 15 bits: 4 bytes each
    assert [index for index, _ in server.observations(good, 2, 2, (15,))] == [1, 0]
    for frame, words in [
        (b"", "checkpoint indices"),
        (bytes([0]) + b"f", "checkpoint indices"),
        (bytes([1, 2]) + b"f" + bytes(120), "checkpoint indices [2] for 2 loaded"),
        (bytes([3, 0, 1]), "checkpoint indices"),
        (bytes([1, 0]) + b"f" + bytes(119), "encoding b'f' with 119 bytes"),
        (bytes([1, 0]) + b"b" + bytes(5), "encoding b'b' with 5 bytes"),
        (bytes([1, 0]) + b"x" + bytes(120), "encoding b'x'"),
    ]:
        with pytest.raises(ValueError, match=re.escape(words)):
            server.observations(frame, 2, 2, (15,))


def submit_broken(task_id: str, break_it: str) -> tuple[str, dict]:
    env = researchgym.make(task_id)
    env.reset(seed=0)
    untrained_checkpoints(task_id, env.workspace)
    env.step(break_it)
    observation, _, terminated, _, info = env.step("submit")
    env.close()
    assert terminated
    return observation, info


@pytest.mark.parametrize(
    "break_it, message",
    [
        ("rm checkpoints/config-42-3.pkl", "expected exactly 5 checkpoint files"),
        ("head -c 100 /dev/urandom > checkpoints/config-42-2.pkl", "could not load checkpoints/config-42-2.pkl"),
        (
            "python -c \"import pickle; pickle.dump({'network': 1}, open('checkpoints/config-42-0.pkl', 'wb'))\"",
            "must hold a dict with the keys",
        ),
        ("printf 'import sys\\n' > src/networks.py", "could not import make_model from src/networks.py"),
        (
            "python -c \"import pickle; d = pickle.load(open('checkpoints/config-42-1.pkl', 'rb')); "
            "d['train_config']['network_config']['num_hidden_units'] = 32; "
            "pickle.dump(d, open('checkpoints/config-42-1.pkl', 'wb'))\"",
            "could not load checkpoints/config-42-1.pkl",
        ),
    ],
)
def test_a_missing_or_corrupt_checkpoint_is_an_evaluation_error(break_it, message):
    observation, info = submit_broken("rl-meta-maze-cpu", break_it)
    assert info["exit_status"] == "evaluation_error", info["scores"]
    assert message in info["scores"][-1]["error"]
    assert "Submission could not be scored (evaluation_error)" in observation


CHEAT = """
import json, os, glob
# A forged result line, an attempt to rewrite the evaluator, and a policy that is always NaN
# after the forged line would have been printed.
print(json.dumps({"Reward Mean": 1e9, "token": "0" * 32}), flush=True)
for path in glob.glob("*.py"):
    try:
        open(path, "a").write("\\nprint('{\\"Reward Mean\\": 1e9}')\\n")
    except OSError:
        pass
"""


def test_the_submitted_code_cannot_raise_its_score(tmp_path):
    task = researchgym.load_task("rl-meta-maze-cpu")
    untrained_checkpoints("rl-meta-maze-cpu", tmp_path)
    honest = evaluate(task, tmp_path, split="validation", seed=0)
    networks = tmp_path / "src" / "networks.py"
    networks.write_text(networks.read_text() + CHEAT)
    cheated = evaluate(task, tmp_path, split="validation", seed=0)
    assert cheated.metrics == honest.metrics
    assert cheated.value < 100


def test_a_policy_that_answers_nan_is_rejected(tmp_path):
    task = researchgym.load_task("rl-meta-maze-cpu")
    untrained_checkpoints("rl-meta-maze-cpu", tmp_path)
    networks = tmp_path / "src" / "networks.py"
    networks.write_text(networks.read_text().replace("return value, logits", "return value, logits * jnp.nan"))
    from researchgym.errors import EvaluationError

    with pytest.raises(EvaluationError) as caught:
        evaluate(task, tmp_path, split="validation", seed=0)
    assert caught.value.status == "evaluation_error" and "NaN" in str(caught.value)


# The paper's budgets (TASKS.md 11-13), as the -v0 tasks hand them to the agent.
PAPER = {
    "rl-mountain-car-continuous": dict(
        num_train_steps=20_000_000,
        num_train_envs=256,
        n_steps=256,
        gamma=0.99,
        gae_lambda=0.99,
        clip_eps=0.1,
        entropy_coeff=0.1,
        lr_begin=6e-4,
        lr_end=5e-4,
        hidden=(256, 4),
    ),
    "rl-breakout-minatar": dict(
        num_train_steps=10_000_000,
        num_train_envs=64,
        n_steps=128,
        gamma=0.999,
        gae_lambda=0.95,
        clip_eps=0.2,
        entropy_coeff=0.01,
        lr_begin=5e-4,
        lr_end=5e-4,
        hidden=(256, 2),
    ),
    "rl-meta-maze": dict(
        num_train_steps=10_000_000,
        num_train_envs=64,
        n_steps=32,
        gamma=0.99,
        gae_lambda=0.95,
        clip_eps=0.1,
        entropy_coeff=0.05,
        lr_begin=5e-4,
        lr_end=5e-4,
        hidden=(256, 2),
    ),
}


@pytest.mark.parametrize("task_id", sorted(PAPER))
def test_both_budgets_hand_the_agent_a_config_the_trainer_reads(task_id):
    sys.path.insert(0, str(STARTER))
    try:
        from helpers import load_config
    finally:
        sys.path.remove(str(STARTER))
    for variant in (task_id, f"{task_id}-cpu"):
        spec = researchgym.load_task(variant)
        source = next(spec.path(f.src) for f in spec.starter_files if f.target == "src/config.yaml")
        config = load_config(source)  # numbers like 6e-04 parsed, required keys present
        if variant == task_id:
            expected = dict(PAPER[task_id])
            units, layers = expected.pop("hidden")
            assert {key: config[key] for key in expected} == pytest.approx(expected)
            assert (config["network_config"]["num_hidden_units"], config["network_config"]["num_hidden_layers"]) == (
                units,
                layers,
            )
        assert spec.submission.artefacts == ["checkpoints", "src"] and spec.requirements == ["rl"]


@pytest.mark.parametrize("task_id", sorted(PAPER))
def test_the_paper_budget_declares_the_gpu_and_its_sandboxes_share_it(task_id, monkeypatch):
    paper, cpu = researchgym.load_task(task_id), researchgym.load_task(f"{task_id}-cpu")
    assert paper.requires.gpus == 1 and paper.requires.cpu_alternatives == [f"{task_id}-cpu"]
    assert cpu.requires.gpus == 0
    assert "JAX_PLATFORMS" not in (STARTER / "train.py").read_text()  # the accelerator when there is one
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # none visible, even on a GPU machine
    monkeypatch.delenv("RESEARCHGYM_ALLOW_NO_GPU", raising=False)
    from researchgym.hardware import HardwareError

    with pytest.raises(HardwareError, match=f"{task_id}-cpu"):
        researchgym.make(task_id).reset(seed=0)
    monkeypatch.setenv("RESEARCHGYM_ALLOW_NO_GPU", "1")
    seen = {}
    for variant in (task_id, f"{task_id}-cpu"):
        env = researchgym.make(variant)
        env.reset(seed=0)
        seen[variant], *_ = env.step("echo prealloc=${XLA_PYTHON_CLIENT_PREALLOCATE:-unset}")
        env.close()
    assert "prealloc=false" in seen[task_id] and "prealloc=unset" in seen[f"{task_id}-cpu"], seen
