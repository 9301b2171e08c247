"""Your branching heuristic for the DPLL solver in solver.py.

Edit `heuristic_fn` (keep its name and signature). The solver calls it at every decision with
its current state and branches on the (variable, value) it returns: `value` is tried first,
then its negation. Return (None, True) to give up on the current branch (the solver then
reports it unsatisfiable, so only do that when no variable is left).
"""

import random


def heuristic_fn(clauses, assignments, conflict_count, assignment_history, level):
    """Choose the next variable to assign and the value to try first.

    clauses: the clauses not yet satisfied (lists of literals v / -v; some literals may
             already be assigned: check `assignments`);
    assignments: dict variable -> bool for the variables set so far;
    conflict_count: dict variable -> how often it took part in a conflict;
    assignment_history: the assigned variables, in order;
    level: the variables set at each decision level.
    """
    random.seed(10)  # do not change: keeps the baseline reproducible
    unassigned = list({abs(lit) for clause in clauses for lit in clause if abs(lit) not in assignments})
    if not unassigned:
        return None, True
    return random.choice(unassigned), True
