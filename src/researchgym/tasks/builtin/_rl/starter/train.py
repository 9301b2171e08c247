"""Train 5 PPO agents and save their checkpoints.

Usage, from the workspace root:
    python src/train.py [--config src/config.yaml] [--checkpoints-dir checkpoints]

Writes <checkpoints-dir>/<config stem>-42-<i>.pkl for i = 0..4. All runs share one training RNG
key and differ only in the key that initialises their network, as the baseline did.
"""

from __future__ import annotations

# No platform is forced: JAX trains on the GPU when the sandbox has one (tasks that declare
# `requires: gpus` get the device files and XLA_PYTHON_CLIENT_PREALLOCATE=false, so several
# processes can share it) and on the CPU otherwise.
import argparse
import sys
import time
from pathlib import Path

SRC_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(SRC_DIR))

import jax  # noqa: E402

from helpers import load_config, save_checkpoint  # noqa: E402
from policy import PPO  # noqa: E402

SEED = 42
NUM_RUNS = 5


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(SRC_DIR / "config.yaml"), help="YAML file with a train_config")
    parser.add_argument("--checkpoints-dir", default="checkpoints", help="where the 5 .pkl files go")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    config_path = Path(args.config)
    config = load_config(config_path)
    checkpoints_dir = Path(args.checkpoints_dir)
    checkpoints_dir.mkdir(parents=True, exist_ok=True)

    ppo = PPO(config)
    keys = jax.random.split(jax.random.PRNGKey(SEED), NUM_RUNS + 1)
    train_key, init_keys = keys[0], keys[1:]
    print(
        f"{config['env_name']}: {NUM_RUNS} runs x {ppo.num_updates} updates of {ppo.steps_per_update} env steps",
        flush=True,
    )

    start = time.time()
    final_returns = []
    for run in range(NUM_RUNS):

        def report(env_steps: int, mean_return: float, run: int = run) -> None:
            print(
                f"run {run} | steps {env_steps:>10,} | eval return {mean_return:9.3f} | {time.time() - start:6.1f}s",
                flush=True,
            )

        result = ppo.train(train_key, ppo.init_params(init_keys[run]), log=report)
        save_checkpoint(
            checkpoints_dir / f"{config_path.stem}-{SEED}-{run}.pkl",
            result.log_steps,
            result.log_return,
            result.params,
            config,
        )
        final_returns.append(result.log_return[-1])

    print(f"Last in-training evaluation return of each run: {[round(r, 3) for r in final_returns]}", flush=True)
    print(f"Total time: {time.time() - start:.1f}s", flush=True)


if __name__ == "__main__":
    main()
