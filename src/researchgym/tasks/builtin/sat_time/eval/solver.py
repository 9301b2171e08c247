"""A DPLL solver for 3-SAT whose branching is decided by a heuristic function.

Clauses are lists of non-zero integer literals (v or -v). The solver keeps clauses whole: a
heuristic must look at `assignments` to tell which literals are still open. There is no
pure-literal rule; unit propagation runs before every decision.

The search is written as a generator, `search()`: at every decision it yields the bitmask of the
unresolved clauses (bit i: clause i) and is sent back the chosen (variable, value). `solve()`
runs it with a `heuristic_fn` in this process, as you can by hand; in an evaluation the
evaluator runs this same search and your heuristic answers from its own sandbox, given exactly
the arguments `solve()` gives it here.
"""

from __future__ import annotations

import operator


class InvalidChoice(ValueError):
    """The heuristic's answer cannot be branched on."""


class DPLL:
    def __init__(self, clauses, heuristic_fn=None):
        self.clauses = [list(clause) for clause in clauses]
        self.num_vars = max((abs(literal) for clause in self.clauses for literal in clause), default=0)
        self.heuristic_fn = heuristic_fn
        self.assignments = {}  # variable -> bool
        self.level = []  # variables set at each decision level
        self.assignment_history = []  # variables in the order they were set
        self.conflict_count = {}  # variable -> conflicts it took part in
        self.num_decisions = 0

    # ------------------------------------------------------------------ literals
    def value(self, literal):
        assigned = self.assignments.get(abs(literal))
        if assigned is None:
            return None
        return assigned if literal > 0 else not assigned

    def unresolved_mask(self):
        """The clauses no assigned literal satisfies, as a bitmask (bit i: clause i)."""
        mask = 0
        for index, clause in enumerate(self.clauses):
            if not any(self.value(lit) is True for lit in clause):
                mask |= 1 << index
        return mask

    def unresolved(self, mask=None):
        """The unresolved clauses, in order (those of `mask` if given)."""
        if mask is None:
            mask = self.unresolved_mask()
        return [clause for clause, bit in zip(self.clauses, bin(mask)[:1:-1]) if bit == "1"]

    def _assign(self, variable, value, frame):
        self.assignments[variable] = value
        self.assignment_history.append(variable)
        frame.append(variable)

    def _undo(self, frame):
        for variable in frame:
            del self.assignments[variable]
            self.assignment_history.pop()

    def _conflict(self, clause):
        for literal in clause:
            self.conflict_count[abs(literal)] = self.conflict_count.get(abs(literal), 0) + 1

    # ------------------------------------------------------------------- search
    def _propagate(self, frame):
        """Unit propagation; False on a conflict."""
        changed = True
        while changed:
            changed = False
            for clause in self.clauses:
                values = [self.value(lit) for lit in clause]
                if True in values:
                    continue
                open_literals = [lit for lit, val in zip(clause, values) if val is None]
                if not open_literals:
                    self._conflict(clause)
                    return False
                if len(open_literals) == 1:
                    literal = open_literals[0]
                    self._assign(abs(literal), literal > 0, frame)
                    changed = True
        return True

    def check_choice(self, variable, value):
        """The rule for a heuristic's answer: `variable` is an int (not a bool) from 1 to the
        formula's largest variable and is not assigned yet, `value` is True or False. Raises
        InvalidChoice."""
        if variable is None:
            raise InvalidChoice("heuristic_fn returned no variable (None); after unit propagation every "
                                "unresolved clause still has an open literal, so there is always one to choose")
        if type(variable) is not int:
            raise InvalidChoice(f"heuristic_fn chose {describe(variable)}, which is not an int")
        if not 1 <= variable <= self.num_vars:
            raise InvalidChoice(f"heuristic_fn chose variable {describe(variable)}, which is not a variable of the "
                                f"formula (1 to {self.num_vars})")
        if variable in self.assignments:
            raise InvalidChoice(f"heuristic_fn chose variable {variable}, which is already assigned")
        if type(value) is not bool:
            raise InvalidChoice(f"heuristic_fn's value {describe(value)} is not True or False")
        return variable, value

    def search(self):
        """The search as a generator: yields the unresolved-clause bitmask at each decision, is
        sent the checked (variable, value) to branch on (value first, then its negation), and
        returns True if the formula is satisfiable under the current assignments (which it keeps)."""
        frame = []
        self.level.append(frame)
        if self._propagate(frame):
            mask = self.unresolved_mask()
            if not mask:
                return True
            variable, value = yield mask
            self.num_decisions += 1
            for choice in (value, not value):
                self._assign(variable, choice, frame)
                if (yield from self.search()):
                    return True
                frame.pop()  # the deeper call undid everything it set
                del self.assignments[variable]
                self.assignment_history.pop()
        self._undo(frame)
        self.level.pop()
        return False

    def solve(self):
        """Run the search with `heuristic_fn` in this process; True if satisfiable."""
        search = self.search()
        try:
            mask = next(search)
            while True:
                answer = self.heuristic_fn(self.unresolved(mask), self.assignments, self.conflict_count,
                                           self.assignment_history, self.level)
                mask = search.send(self.check_choice(*normalize(answer)))
        except StopIteration as finished:
            return finished.value


def normalize(answer):
    """What the evaluation sends of a heuristic's answer: (variable, bool(value)), the variable
    as an int when it is an integer of another type (numpy's, say). Raises InvalidChoice when
    the answer is not a pair or its value has no truth value."""
    try:
        variable, value = answer
    except (TypeError, ValueError):
        raise InvalidChoice(f"heuristic_fn returned {describe(answer)}, not a (variable, value) pair") from None
    try:
        value = bool(value)
    except Exception as exc:  # noqa: BLE001 - any error of the heuristic's object
        raise InvalidChoice(f"heuristic_fn's value {describe(value)} has no truth value ({exc})") from None
    if not isinstance(variable, (bool, int, float, str)) and variable is not None:
        try:
            variable = operator.index(variable)
        except TypeError:
            pass
    elif isinstance(variable, int) and not isinstance(variable, bool):
        variable = int(variable)
    return variable, value


def describe(value):
    """A short description of a value for an error message."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        digits = str(value) if value.bit_length() < 4000 else None
        if digits is None:
            return f"an int of {value.bit_length()} bits"
        return digits if len(digits) <= 20 else f"{digits[:12]}... ({len(digits)} digits)"
    if isinstance(value, float):
        return f"the float {value!r}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}" + ("..." if len(value) > 40 else "")
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001
        text = "?"
    return f"{text[:60]} (a {type(value).__name__})"
