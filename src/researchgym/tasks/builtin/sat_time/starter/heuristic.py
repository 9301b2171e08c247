"""Your branching heuristic for the DPLL solver in solver.py.

Edit `heuristic_fn` (keep its name and signature). The solver calls it at every decision with
its current state and branches on the (variable, value) it returns: `value` is tried first,
then its negation. `variable` must be an int from 1 to the formula's largest variable that is
not assigned yet; there always is one in an open clause (unit propagation runs first), and any
other answer, None included, makes the submission invalid. In an evaluation this file runs in a sandbox of its own and
gets exactly these arguments from the evaluator's solver (see heuristic_server.py).
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
    if not unassigned:  # never happens: the solver asks only while a clause is open
        return None, True
    return random.choice(unassigned), True
