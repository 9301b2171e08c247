"""Latency of the gateway-backed research tools, measured through `env.step` in bwrap.

A gateway command is a Python process in the sandbox that makes one Unix-socket call to the
host; the host embeds text (memory) or ranks a corpus (literature). Printed as p50 and max over
a few runs, next to a plain shell step and to a bare gateway round trip (no sandbox, no work),
so the ratios show what the socket, the process and the embedding each cost.
"""

from __future__ import annotations

import importlib.util
import json
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import researchgym
from researchgym.tools.docs import TOOLS_LIB
from researchgym.tools.gateway import GatewayTool, ToolGateway

RUNS = 15
CORPUS_PAPERS = 500


def p50_ms(samples: list[float]) -> tuple[float, float]:
    return statistics.median(samples) * 1e3, max(samples) * 1e3


def bare_round_trip() -> list[float]:
    spec = importlib.util.spec_from_file_location("rggateway_bench", TOOLS_LIB / "rggateway.py")
    client = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(client)
    samples = []
    with ToolGateway([GatewayTool("echo", lambda args: {"output": args["text"]})]) as gateway:
        import os

        os.environ["RESEARCHGYM_GATEWAY"] = str(gateway.socket_path)
        for _ in range(RUNS * 10):
            started = time.perf_counter()
            client.call("echo", text="hello")
            samples.append(time.perf_counter() - started)
        del os.environ["RESEARCHGYM_GATEWAY"]
    return samples


def main() -> None:
    warnings.simplefilter("ignore")
    corpus = Path(tempfile.mkdtemp(prefix="researchgym-bench-corpus-"))
    topics = [
        "residual networks",
        "attention",
        "gradient boosting",
        "reinforcement learning",
        "diffusion models",
        "graph neural networks",
        "contrastive learning",
        "bayesian optimisation",
        "pruning",
        "distillation",
    ]
    with (corpus / "papers.jsonl").open("w") as out:
        for number in range(CORPUS_PAPERS):
            topic = topics[number % len(topics)]
            out.write(
                json.dumps(
                    {
                        "title": f"On {topic}, part {number}",
                        "year": 2000 + number % 25,
                        "abstract": f"We study {topic} in setting {number} and report results. " * 8,
                    }
                )
                + "\n"
            )
    started = time.perf_counter()
    env = researchgym.make(
        "battleOfSexes",
        footer=True,
        limits={"max_steps": 10_000},
        research_tools={
            "memory": {"enabled": True},
            "literature": {"enabled": True, "corpus": str(corpus), "offline": True},
        },
    )
    load_s = time.perf_counter() - started
    env.reset(seed=0)
    print(f"researchgym research tools through env.step (bwrap), p50 of {RUNS} runs")
    print(f"(environment construction with the embedding model loaded: {load_s:.1f} s)\n")
    print(f"{'command':44} {'p50 ms':>9} {'max ms':>9}")

    def report(label: str, action: str) -> None:
        samples = []
        for _ in range(RUNS):
            begun = time.perf_counter()
            env.step(action)
            samples.append(time.perf_counter() - begun)
        print(f"{label:44} {p50_ms(samples)[0]:9.1f} {p50_ms(samples)[1]:9.1f}")

    try:
        report("echo hi (plain shell step)", "echo hi")
        report("memory_write (one embedding)", "memory_write the learning rate 0.01 worked best --tags lr")
        report("memory_read, 15+ entries", "memory_read which learning rate worked")
        for _ in range(200):
            env.step("memory_write filler finding about nothing in particular")
        report("memory_read, 200+ entries", "memory_read which learning rate worked")
        report(f"literature_search, {CORPUS_PAPERS} abstracts", "literature_search gradient boosting for tables --n 5")
    finally:
        env.close()
    trip = p50_ms(bare_round_trip())
    print(f"{'bare gateway round trip (host, no sandbox)':44} {trip[0]:9.2f} {trip[1]:9.2f}")


if __name__ == "__main__":
    main()
