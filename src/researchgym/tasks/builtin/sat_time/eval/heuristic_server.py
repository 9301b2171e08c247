"""The heuristic's side of the 3-SAT evaluation: imports heuristic_fn and answers the solver.

In an evaluation this runs in a sandbox of its own holding heuristic.py and the task's public
files, and nothing else; the DPLL solver runs in the evaluator, which talks to this server over
stdin/stdout (see agent_link.py) through cpu_meter.py: the meter starts this server, passes the
frames on unchanged and measures the CPU time used here. Run by hand, evaluate.py starts the
meter as a subprocess.

Protocol (JSON frames):
* once heuristic.py is imported, this server sends {"ready": true} (or {"error": traceback});
* the evaluator sends {"formulas": [[instance, clauses], ...]} once, and this server answers
  {"loaded": count};
* each round the evaluator sends {"ask": [request, ...]}, one request per pending decision,
  [instance, unresolved_mask, literals, level_sizes, conflicts] where `literals` are the
  assigned variables in the order they were set, signed by their value, `level_sizes` the
  number of them set at each decision level, and `conflicts` the conflict counts as a flat
  [variable, count, ...] list in the solver's order; from these this server rebuilds exactly
  the arguments solver.DPLL.solve() passes to heuristic_fn (see `arguments`);
* it answers every request, in order, as lists of answers: [variable, value] (value made a bool
  as the solver does), or a string saying why heuristic_fn gave no usable answer. It sends what
  it has answered at least every 20 ms, so the evaluator can time each decision.

The evaluator checks every answer and the meter, not this server, measures the CPU time;
nothing here can change a score except the answers and the CPU time they cost.
"""

from __future__ import annotations

import gc
import json
import math
import sys
import threading
import time
import traceback

from agent_link import AgentEnd
from solver import InvalidChoice, describe, normalize

#: The longest an answer waits in this server before it is sent.
FLUSH_S = 0.02


class Outbox:
    """Answers waiting to be sent; a thread sends them every FLUSH_S, and the round's last at once."""

    def __init__(self, end: AgentEnd) -> None:
        self.end = end
        self.pending: list = []
        self.lock = threading.Lock()
        threading.Thread(target=self._flusher, daemon=True, name="flusher").start()

    def add(self, answer) -> None:
        with self.lock:
            self.pending.append(answer)

    def flush(self) -> None:
        with self.lock:
            if self.pending:
                self.end.send(json.dumps(self.pending, allow_nan=False, separators=(",", ":")).encode())
                self.pending = []

    def _flusher(self) -> None:
        while True:
            time.sleep(FLUSH_S)
            self.flush()


def encode(result):
    """The answer to send for what heuristic_fn returned (always JSON-safe)."""
    try:
        variable, value = normalize(result)
    except InvalidChoice as exc:
        return str(exc)
    if isinstance(variable, int) and not isinstance(variable, bool) and variable.bit_length() > 1000:
        return f"heuristic_fn chose a variable of {variable.bit_length()} bits, which is not a variable of the formula"
    if isinstance(variable, float) and not math.isfinite(variable):
        return f"heuristic_fn chose {describe(variable)}, which is not an int"
    if isinstance(variable, str):
        variable = variable[:100]
    elif variable is not None and not isinstance(variable, (bool, int, float)):
        return f"heuristic_fn chose {describe(variable)}, which is not an int"
    return [variable, value]


def arguments(clauses, mask, literals, sizes, conflicts):
    """heuristic_fn's arguments, as solver.DPLL.solve() passes them, from what the evaluator
    sends of a decision (evaluate.question): the unresolved clauses (this server's copies of
    the formula's clause lists, in order), the assignments and the history in the order they
    were set, the variables set at each level, and the conflict counts in the solver's order."""
    unresolved = [clause for clause, bit in zip(clauses, bin(mask)[:1:-1]) if bit == "1"]
    assignments = {abs(literal): literal > 0 for literal in literals}
    history = list(assignments)
    level, start = [], 0
    for size in sizes:
        level.append(history[start:start + size])
        start += size
    return unresolved, assignments, dict(zip(conflicts[::2], conflicts[1::2])), history, level


def receive(end: AgentEnd):
    """The next request (parsing it makes no reference cycles: no collection meanwhile)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        return end.receive_json()
    finally:
        if collecting:
            gc.enable()


def main() -> None:
    end = AgentEnd.from_stdio()
    try:
        from heuristic import heuristic_fn
    except BaseException:  # noqa: BLE001 - report anything, even SystemExit, to the evaluator
        end.send_json({"error": "could not import heuristic_fn from heuristic.py:\n" + traceback.format_exc()[-3000:]})
        return
    end.send_json({"ready": True})
    outbox = Outbox(end)
    formulas = {}
    while True:
        request = receive(end)
        if request is None:
            return
        if "formulas" in request:
            formulas.update((instance, clauses) for instance, clauses in request["formulas"])
            gc.freeze()  # the formulas live to the end: the collector need not walk them again
            with outbox.lock:
                end.send_json({"loaded": len(request["formulas"])})
            continue
        for instance, *state in request["ask"]:
            try:
                answer = encode(heuristic_fn(*arguments(formulas[instance], *state)))
            except Exception:  # noqa: BLE001 - the heuristic's error, reported as its answer
                # The evaluator stops at the first error: answering the rest of the round would
                # only send one long traceback per instance, past the frame it accepts.
                outbox.add("heuristic_fn raised an exception:\n" + traceback.format_exc()[-2000:])
                break
            outbox.add(answer)
        outbox.flush()


if __name__ == "__main__":
    sys.exit(main())
