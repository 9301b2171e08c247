"""A DPLL solver for 3-SAT whose branching is decided by a heuristic function.

Clauses are lists of non-zero integer literals (v or -v). The solver keeps clauses whole: a
heuristic must look at `assignments` to tell which literals are still open. There is no
pure-literal rule; unit propagation runs before every decision.
"""

from __future__ import annotations


class DPLL:
    def __init__(self, clauses, heuristic_fn):
        self.clauses = [list(clause) for clause in clauses]
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

    def unresolved(self):
        return [c for c in self.clauses if not any(self.value(lit) is True for lit in c)]

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

    def solve(self):
        """True if the formula is satisfiable under the current assignments (which it keeps)."""
        frame = []
        self.level.append(frame)
        if self._propagate(frame):
            unresolved = self.unresolved()
            if not unresolved:
                return True
            variable, value = self.heuristic_fn(unresolved, self.assignments, self.conflict_count,
                                                self.assignment_history, self.level)
            self.num_decisions += 1
            if variable is not None:
                if variable in self.assignments:
                    raise ValueError(f"heuristic_fn chose variable {variable}, which is already assigned")
                for choice in (bool(value), not bool(value)):
                    self._assign(variable, choice, frame)
                    if self.solve():
                        return True
                    frame.pop()  # the deeper call undid everything it set
                    del self.assignments[variable]
                    self.assignment_history.pop()
        self._undo(frame)
        self.level.pop()
        return False
