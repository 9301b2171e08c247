"""Latency of the agent-computer interface commands, measured through `env.step` in bwrap.

Each command is a fresh Python process inside the sandbox, so its floor is interpreter
start-up; the 100k-line file shows what the file size adds. Printed as p50 over a few runs.
"""

from __future__ import annotations

import statistics
import time

import researchgym

RUNS = 15
LINES = 100_000


def main() -> None:
    env = researchgym.make("battleOfSexes", footer=False, limits={"max_steps": 10_000})
    env.reset(seed=0)
    (env.workspace / "big.py").write_text("".join(f"value_{i} = {i}\n" for i in range(LINES)))
    (env.workspace / "small.py").write_text("import math\n\n\ndef f(x):\n    return math.sqrt(x)\n")
    cases = {
        "echo hi (plain shell step)": "echo hi",
        "open small.py": "open small.py",
        f"open big.py ({LINES:,} lines)": "open big.py 50000",
        "goto in big.py": "goto 99000",
        "open small.py again": "open small.py",
        "edit small.py (lint passes)": "edit 5:5\n    return math.sqrt(abs(x))\nend_of_edit",
        "edit small.py (lint refuses)": "edit 5:5\n    return sqrt(x)\nend_of_edit",
        "search_file in big.py": "search_file value_99999 big.py",
        "search_dir in workspace": "search_dir value_12345",
        "find_file *.py": "find_file '*.py'",
    }
    print(f"researchgym tools latency through env.step (bwrap), p50 of {RUNS} runs\n")
    print(f"{'command':40} {'p50 ms':>9} {'max ms':>9}")
    try:
        for label, action in cases.items():
            samples = []
            for _ in range(RUNS):
                started = time.perf_counter()
                env.step(action)
                samples.append(time.perf_counter() - started)
            print(f"{label:40} {statistics.median(samples) * 1e3:9.1f} {max(samples) * 1e3:9.1f}")
    finally:
        env.close()


if __name__ == "__main__":
    main()
