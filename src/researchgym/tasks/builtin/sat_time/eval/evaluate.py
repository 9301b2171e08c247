"""Score heuristic.py for the 3-SAT task: the CPU time it takes to solve every instance.

    python evaluate.py --split validation|test [--instance-timeout 5]

The DPLL solver (solver.py) runs here, in the evaluator. heuristic.py runs in a sandbox of its
own, behind heuristic_server.py, and only answers the solver's questions over the link
(agent_link.py). In that sandbox cpu_meter.py holds the link, runs the server as its child and
measures the CPU time used there; run by hand, the meter is started as a subprocess.

Instances. validation: data/validation.json (6,000, public). test: 24,000 instances generated
here, at evaluation time, from the evaluation's secret seed (instances.py), so they cannot be
known in advance. The solver is exact, so its answers need no labels; on validation they are
still checked against the labels, as a check of this evaluator (evaluation_error if they ever
disagree).

Rounds. Every instance's search is a generator (solver.DPLL.search) that stops at each decision.
The formulas are sent once, in one message, before the first round. Then all instances advance
in lock-step: one round sends the pending decision of every unfinished instance in one message
(only the small state the heuristic's arguments are rebuilt from), the server answers them in
order, and the evaluator checks every answer and steps every search to its next decision. So the
number of round trips is the largest number of decisions of any one instance (plus one for the
formulas), not their sum.

Time is CPU time (user + system), so that the load of the machine does not change it: this
evaluator's own CPU time from building the first search to the last answer (solver work,
building and sending the rounds, reading the answers), plus the CPU time used in the
heuristic's sandbox from the server's first message to the last answer (taking in the formulas
and the rounds, rebuilding the arguments, heuristic_fn, sending the answers; every thread and
every process started there counts, see cpu_meter.py). The meter reports that figure when asked
after the last answer, signed with a key this evaluator sent it before the heuristic's code
started, over a fresh nonce. Importing heuristic.py is not timed (it must be done within 60 s).
Waiting costs no CPU time: the limits below, which are wall-clock time, bound it.

Limits (wall-clock time: they end a heuristic that sleeps or hangs). An instance's time is the
time spent stepping its search, plus an equal share of sending the formulas (until the server
says it has them, within 60 s) and of sending each round it was part of, plus its share of
waiting for the heuristic's answers: the wait for each message from the server (which sends
what it has answered at least every 20 ms) divided equally among the answers that message
carried. More than 5 s on any instance makes the submission invalid, and so does the server
sending nothing while the first instance still waiting for its answer has used up its 5 s (a
hanging or sleeping heuristic fails within 5 s).
The whole solve may take at most 25 ms per instance (600 s on the test set, 150 s on
validation), which keeps every evaluation within the task's timeout.

Answers. heuristic_fn must return (variable, value): variable an int from 1 to the formula's
largest variable, not assigned yet, and value anything bool() accepts (the value is tried first,
then its negation). Anything else (None, an assigned variable, 0, a negative or larger variable,
a float, a bool, a string, an exception) makes the submission invalid, naming the instance.

Reports (on the result channel): Time (CPU seconds, minimise), SolverCPU and HeuristicCPU (its two
parts), Correct, Incorrect, Decisions, and RoundTrips (the rounds of decisions; the formulas'
message aside).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import hmac
import json
import os
import secrets
import sys
import time
from itertools import chain

from agent_link import MAX_FRAME, AgentLink, LinkError, dumps, report, report_error, strict_loads
from instances import secret_instances
from isolation import no_memory_access, take_secrets
from solver import DPLL, InvalidChoice, describe

#: How long heuristic.py may take to import (not timed), and the server to take in the formulas.
IMPORT_TIMEOUT_S = 60.0
LOAD_TIMEOUT_S = 60.0
#: The whole solve's limit, per instance of the split.
TOTAL_S_PER_INSTANCE = 0.025
#: The largest answer message accepted: room for one error message (the server sends at most a
#: few thousand characters of one) plus this much per answer still expected ([variable, value]
#: takes about 10, a string variable is cut to 100 characters).
FRAME_BYTES_FIXED = 64 << 10
FRAME_BYTES_PER_ANSWER = 128
#: How long cpu_meter.py may take to report the heuristic's CPU time.
REPORT_TIMEOUT_S = 30.0
#: cpu_meter.py's tags: a frame of the server's, a request to the meter, the meter's report.
FORWARD, REQUEST, REPORT = b"=", b"?", b"!"


class Rejected(Exception):
    """The submission cannot be scored; the message says why."""


class MeteredLink:
    """The link through cpu_meter.py: frames to and from the heuristic's server pass tagged, and
    the meter reports the CPU time of the heuristic's sandbox, signed with a key sent to it
    first (before the heuristic's code exists)."""

    def __init__(self, link: AgentLink) -> None:
        self.link = link
        self.key = secrets.token_bytes(32)
        link.send(REQUEST + dumps({"key": self.key.hex()}), LOAD_TIMEOUT_S)
        self.counted = ""

    def send(self, payload: bytes, timeout_s: float) -> None:
        self.link.send(FORWARD + payload, timeout_s)

    def receive_json(self, timeout_s: float, limit: int = MAX_FRAME, doing: str = "answer"):
        frame = self.link.receive(timeout_s, limit + 1, doing)
        if frame[:1] != FORWARD:
            raise LinkError("the agent's side sent a frame that is not the heuristic's server's")
        try:
            return strict_loads(frame[1:])
        except (ValueError, RecursionError) as exc:
            raise LinkError(f"the agent's code sent an answer that is not valid JSON here: {exc}") from None

    def heuristic_cpu_s(self) -> float:
        """The CPU seconds used in the heuristic's sandbox since its server said it is ready."""
        nonce = secrets.token_hex(16)
        try:
            self.link.send(REQUEST + dumps({"measure": nonce}), REPORT_TIMEOUT_S)
            frame = self.link.receive(REPORT_TIMEOUT_S, 4096, "report the heuristic's CPU time")
        except LinkError as exc:
            raise Rejected(f"the heuristic's sandbox did not report its CPU time: {exc}") from None
        body = frame[33:]
        if frame[:1] != REPORT or not hmac.compare_digest(frame[1:33], hmac.new(self.key, body, hashlib.sha256).digest()):
            raise Rejected("the heuristic's sandbox sent something after the last answers instead of its meter's "
                           "signed CPU report")
        measured = json.loads(body)
        cpu_s = measured.get("cpu_s")
        if measured.get("nonce") != nonce or not isinstance(cpu_s, float) or not 0 <= cpu_s < float("inf"):
            raise Rejected("the heuristic's CPU report does not answer this request")
        self.counted = {"sandbox": "every process of the heuristic's sandbox",
                        "descendants": "the meter's descendants"}.get(measured.get("counted"), "?")
        return cpu_s


class Solve:
    """Every instance of a split solved in lock-step rounds, asking the heuristic over `link`."""

    def __init__(self, link: MeteredLink, formulas: list, names: list[str], limit_s: float, total_s: float) -> None:
        self.link, self.formulas, self.names = link, formulas, names
        self.limit_s, self.total_s = limit_s, total_s
        count = len(formulas)
        self.solvers: list[DPLL] = []
        self.searches: list = []
        self.masks: list[int | None] = [None] * count
        self.results: list[bool | None] = [None] * count
        self.spent = [0.0] * count  # each instance's time, as defined in the docstring
        self.rounds = self.messages = 0
        self.waited = self.sending = 0.0
        self.cpu_s = 0.0  # this process's CPU time over the solve

    def run(self) -> float:
        """Solve everything; the wall-clock time it took (its CPU time in `cpu_s`). The searches
        make no reference cycles, so the cyclic garbage collector, which would walk every live
        search again and again, is off meanwhile."""
        gc.collect()
        gc.disable()
        try:
            return self._run()
        finally:
            gc.enable()

    def _run(self) -> float:
        cpu_started = time.process_time()
        started = time.perf_counter()
        self.deadline = started + self.total_s
        for index, formula in enumerate(self.formulas):
            begun = time.perf_counter()
            solver = DPLL(formula)
            search = solver.search()
            self.solvers.append(solver)
            self.searches.append(search)
            self._step(index, None)
            self.spent[index] += time.perf_counter() - begun
        self.formulas = []
        active = [index for index, mask in enumerate(self.masks) if mask is not None]
        if active:
            self._load(active)
        while active:
            self.rounds += 1
            choices = self._ask(active)
            for index, choice in zip(active, choices):
                begun = time.perf_counter()
                self._step(index, choice)
                self.spent[index] += time.perf_counter() - begun
                self._check_time(index)
            active = [index for index in active if self.masks[index] is not None]
        self.cpu_s = time.process_time() - cpu_started
        return time.perf_counter() - started

    def _step(self, index: int, choice: tuple[int, bool] | None) -> None:
        search = self.searches[index]
        try:
            self.masks[index] = next(search) if choice is None else search.send(choice)
        except StopIteration as finished:
            self.masks[index] = None
            self.results[index] = bool(finished.value)

    def _check_time(self, index: int) -> None:
        if self.spent[index] > self.limit_s:
            raise Rejected(f"{self.names[index]} took longer than {self.limit_s:g}s ({self.spent[index]:.2f}s: "
                           "solver time and its share of sending and of waiting for the heuristic)")

    def _share(self, active: list[int], seconds: float) -> None:
        for index in active:
            self.spent[index] += seconds / len(active)
            self._check_time(index)

    def _load(self, active: list[int]) -> None:
        """The formulas of the instances that need decisions, once, before the first round."""
        begun = time.perf_counter()
        payload = dumps({"formulas": [[index, self.solvers[index].clauses] for index in active]})
        allowed = self._left(LOAD_TIMEOUT_S)
        deadline = time.perf_counter() + allowed
        try:
            self.link.send(payload, max(allowed, 0.001))
            reply = self.link.receive_json(max(deadline - time.perf_counter(), 0.001), limit=1 << 16,
                                           doing="take in the formulas")
        except LinkError as exc:
            if time.perf_counter() < deadline - 0.001:
                raise Rejected(f"the heuristic's server failed while taking in the formulas: {exc}") from None
            if allowed < LOAD_TIMEOUT_S:
                raise self._too_long() from None
            raise Rejected(f"the heuristic's server did not take in the formulas within {LOAD_TIMEOUT_S:g}s") from None
        if reply != {"loaded": len(active)}:
            raise Rejected(f"the heuristic's server sent {describe_message(reply)} instead of saying it has "
                           f"taken in {len(active)} formulas")
        self.sending += time.perf_counter() - begun
        self._share(active, time.perf_counter() - begun)

    def _ask(self, active: list[int]) -> list[tuple[int, bool]]:
        """One round trip: the pending decision of every instance in `active`, checked answers."""
        begun = time.perf_counter()
        if begun >= self.deadline:
            raise self._too_long()
        payload = dumps({"ask": [[index, *question(self.solvers[index], self.masks[index])] for index in active]})
        try:
            self.link.send(payload, max(self._left(self.limit_s), 0.001))
        except LinkError as exc:
            raise Rejected(f"round {self.rounds}: the heuristic's server did not take the round's questions: "
                           f"{exc}") from None
        sending = time.perf_counter() - begun
        self.sending += sending
        self._share(active, sending)
        choices: list[tuple[int, bool]] = []
        while len(choices) < len(active):
            first = active[len(choices)]
            own = self.limit_s - self.spent[first]
            allowed = self._left(own)
            waiting = time.perf_counter()
            expected = len(active) - len(choices)
            try:
                answers = self.link.receive_json(max(allowed, 0.001), doing="answer",
                                                 limit=FRAME_BYTES_FIXED + FRAME_BYTES_PER_ANSWER * expected)
            except LinkError as exc:
                waited = time.perf_counter() - waiting
                if waited < allowed - 0.001:
                    raise Rejected(f"round {self.rounds}: the heuristic's server failed while {self.names[first]} "
                                   f"waited for its answer: {exc}") from None
                if allowed < own:
                    raise self._too_long() from None
                raise Rejected(f"{self.names[first]} took longer than {self.limit_s:g}s: the heuristic did not answer "
                               f"its decision in round {self.rounds} within the {own:.2f}s it had left") from None
            waited = time.perf_counter() - waiting
            self.waited += waited
            self.messages += 1
            if not isinstance(answers, list) or not 1 <= len(answers) <= expected:
                raise Rejected(f"round {self.rounds}: the heuristic's server sent {describe_message(answers)}, not a "
                               f"list of 1 to {expected} answers")
            for answer in answers:
                index = active[len(choices)]
                self.spent[index] += waited / len(answers)
                choices.append(self._check(index, answer))
                self._check_time(index)
        return choices

    def _too_long(self) -> Rejected:
        return Rejected(f"the whole solve took longer than {self.total_s:g}s (at most "
                        f"{self.total_s / len(self.solvers) * 1000:g} ms per instance; round {self.rounds})")

    def _left(self, wanted: float) -> float:
        return min(wanted, self.deadline - time.perf_counter())

    def _check(self, index: int, answer) -> tuple[int, bool]:
        name = self.names[index]
        if isinstance(answer, str):
            raise Rejected(f"{name}: {answer[:2000]}")
        if not isinstance(answer, list) or len(answer) != 2:
            raise Rejected(f"{name}: the heuristic's server sent {describe_message(answer)}, not a [variable, value] "
                           "answer")
        try:
            return self.solvers[index].check_choice(answer[0], answer[1])
        except InvalidChoice as exc:
            raise Rejected(f"{name}: {exc}") from None


def question(solver: DPLL, mask: int) -> list:
    """What the heuristic's server is sent of a pending decision, from which it rebuilds
    heuristic_fn's arguments (heuristic_server.arguments): the unresolved-clause mask, the
    assigned variables signed by their values in the order they were set (a dict keeps that
    order, the same as assignment_history's), the number set at each decision level (the
    levels split the history in order), and the conflict counts as a flat list."""
    return [mask, [v if b else -v for v, b in solver.assignments.items()], [len(frame) for frame in solver.level],
            [*chain.from_iterable(solver.conflict_count.items())]]


def describe_message(value) -> str:
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    return describe(value)


def load(split: str, seed: int | None) -> tuple[list, list[str], list[bool] | None]:
    """The split's formulas, the names of its instances, and its labels where public."""
    if split == "test":
        formulas = secret_instances(seed if seed is not None else secrets.randbits(63))
        return formulas, [f"test instance {number}" for number in range(1, len(formulas) + 1)], None
    with open("data/validation.json") as handle:
        rows = json.load(handle)
    return ([row["formula"] for row in rows], [f"validation instance {row['index']}" for row in rows],
            [row["is_sat"] for row in rows])


def main() -> int:
    no_memory_access()
    _, seed = take_secrets()
    parser = argparse.ArgumentParser()
    parser.add_argument("--split", default=os.environ.get("RESEARCHGYM_SPLIT", "validation"),
                        choices=["validation", "test"])
    parser.add_argument("--instance-timeout", type=float, default=5.0)
    parser.add_argument("--total-timeout", type=float, default=None,
                        help=f"the whole solve's limit (default: {TOTAL_S_PER_INSTANCE * 1000:g} ms per instance)")
    args = parser.parse_args()
    formulas, names, labels = load(args.split, seed)
    total_s = args.total_timeout or TOTAL_S_PER_INSTANCE * len(formulas)
    link = AgentLink.open([sys.executable, "cpu_meter.py", "--descendants-only"])
    try:
        metered = MeteredLink(link)
        try:
            hello = metered.receive_json(IMPORT_TIMEOUT_S, limit=1 << 16, doing="import heuristic.py")
        except LinkError as exc:
            raise Rejected(f"heuristic.py could not be loaded: {exc}") from None
        if isinstance(hello, dict) and isinstance(hello.get("error"), str):
            raise Rejected(hello["error"][-3000:])
        if hello != {"ready": True}:
            raise Rejected(f"the heuristic's server sent {describe_message(hello)} instead of saying it is ready")
        solve = Solve(metered, formulas, names, args.instance_timeout, total_s)
        del formulas
        elapsed = solve.run()
        heuristic_cpu = metered.heuristic_cpu_s()
    except Rejected as exc:
        report_error(str(exc))
        return 1
    finally:
        link.close()
    results = solve.results
    decisions = sum(solver.num_decisions for solver in solve.solvers)
    print(f"{len(results):,} instances ({sum(results):,} satisfiable): {decisions:,} decisions in {solve.rounds} "
          f"round trips ({solve.messages:,} answer messages); CPU time {solve.cpu_s:.3f}s here and "
          f"{heuristic_cpu:.3f}s in the heuristic's sandbox ({metered.counted}); wall clock {elapsed:.3f}s, of which sending rounds "
          f"{solve.sending:.3f}s and waiting for the heuristic {solve.waited:.3f}s", file=sys.stderr)
    if labels is not None:
        wrong = [name for name, result, label in zip(names, results, labels) if result != label]
        if wrong:
            report_error(f"the evaluator's solver disagrees with validation.json on {len(wrong)} instances "
                         f"({', '.join(wrong[:5])}): a fault of the evaluation, not of the heuristic",
                         "evaluation_error")
            return 1
    report({"Time": round(solve.cpu_s + heuristic_cpu, 3), "SolverCPU": round(solve.cpu_s, 3),
            "HeuristicCPU": round(heuristic_cpu, 3), "Correct": len(results), "Incorrect": 0, "Decisions": decisions,
            "RoundTrips": solve.rounds, "split": args.split})
    return 0


if __name__ == "__main__":
    sys.exit(main())
