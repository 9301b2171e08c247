"""Score heuristic.py for the 3-SAT task: total time to solve every instance, all correct.

    python evaluate.py --split validation|test [--instance-timeout 5]

The heuristic and the solver run in a child process that receives the formulas but never the
labels, the seed or the result token; this process checks each answer against the label and
times the whole batch (from sending the formulas to getting every answer back). A wrong
answer, a timeout on any instance, or a heuristic that modifies the solver makes the
submission infeasible (no score). Prints one JSON line: Time (seconds, minimise), Correct,
Incorrect, Decisions.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from isolation import kill_everyone_else, no_memory_access, take_secrets

CHILD = r'''
import json, os, signal, sys, traceback
proto = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)  # prints from the heuristic go to stderr, not into the protocol
sys.stdout = sys.stderr
sys.path.insert(0, os.getcwd())
limit = float(sys.argv[1])

def reply(value):
    proto.write(json.dumps(value) + "\n")
    proto.flush()

try:
    import solver
    pristine = (dict(vars(solver.DPLL)), dict(vars(solver)))
    from heuristic import heuristic_fn
except BaseException:
    reply({"error": "could not import heuristic_fn from heuristic.py:\n" + traceback.format_exc()})
    sys.exit(0)

class Timeout(Exception):
    pass

def alarm(signum, frame):
    raise Timeout()

signal.signal(signal.SIGALRM, alarm)
formulas = json.loads(sys.stdin.readline())
results = []
for index, formula in enumerate(formulas):
    try:
        signal.setitimer(signal.ITIMER_REAL, limit)
        dpll = solver.DPLL(formula, heuristic_fn)
        answer = dpll.solve()
        signal.setitimer(signal.ITIMER_REAL, 0)
    except Timeout:
        reply({"error": f"instance {index + 1} took longer than {limit:g}s"})
        sys.exit(0)
    except BaseException:
        signal.setitimer(signal.ITIMER_REAL, 0)
        reply({"error": f"instance {index + 1}: " + traceback.format_exc()})
        sys.exit(0)
    if (dict(vars(solver.DPLL)), dict(vars(solver))) != pristine:
        reply({"error": "heuristic.py changed the solver; only heuristic_fn may be edited"})
        sys.exit(0)
    results.append([bool(answer), dpll.num_decisions])
reply({"results": results})
'''


def main() -> None:
    no_memory_access()
    parser = argparse.ArgumentParser()
    parser.add_argument("--split", default=os.environ.get("RESEARCHGYM_SPLIT", "validation"))
    parser.add_argument("--instance-timeout", type=float, default=5.0)
    args = parser.parse_args()
    token, _ = take_secrets()

    def fail(message: str) -> None:
        print(json.dumps({"error": message, "token": token}))
        sys.exit(1)

    path = "data/answers/test.json" if args.split == "test" else "data/validation.json"
    with open(path) as handle:
        rows = json.load(handle)
    labels = [row["is_sat"] for row in rows]
    payload = json.dumps([row["formula"] for row in rows]) + "\n"
    del rows
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(args.instance_timeout)], start_new_session=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env={k: v for k, v in os.environ.items() if not k.startswith("RESEARCHGYM_")})
    assert child.stdin is not None and child.stdout is not None
    started = time.perf_counter()
    child.stdin.write(payload)
    child.stdin.flush()
    line = child.stdout.readline()
    elapsed = time.perf_counter() - started
    child.kill()
    child.wait()
    kill_everyone_else()
    if not line:
        fail("the solver process died (see the error output above)")
    answer = json.loads(line)
    if "error" in answer:
        fail(answer["error"])
    results = answer["results"]
    if len(results) != len(labels):
        fail(f"got {len(results)} answers for {len(labels)} instances")
    wrong = [i + 1 for i, ((sat, _), label) in enumerate(zip(results, labels)) if sat != label]
    if wrong:
        fail(f"wrong SAT/UNSAT answer on {len(wrong)} instances (first: {wrong[:5]}); a heuristic must "
             "never make the solver give up early")
    print(json.dumps({"Time": round(elapsed, 3), "Correct": len(labels), "Incorrect": 0,
                      "Decisions": sum(d for _, d in results), "split": args.split, "token": token}))


if __name__ == "__main__":
    main()
