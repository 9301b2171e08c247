"""Runs a Python-task answer as `__main__` and records what its own code called (in the judging
sandbox, next to runhook.py, which must be active: it owns the log).

    python -m researchgym_pyanswer ANSWER.py FIRST_LINE [PACKAGE,...]

The answer's source is compiled with every call written at or after FIRST_LINE (the lines before
are the sample's prefix_code) routed through a recorder, so the judge sees the calls that ran,
not the text: a call in a branch never taken, in a function never called or after an exception
is not recorded, and arguments are recorded as the values they had, whatever expression made
them. Only calls into the PACKAGEs (the task's library; without them, anything outside the
standard library and the answer) are logged, each distinct call once (at most MAX_RECORDS):
{kind: "call", line, callee ("module:qualname"), args (parameter name -> value, by the callee's
signature where it has one), positional (values it could not name), defaults (the callee's
scalar parameter defaults)}. A `print` (or
`sys.stdout.write`) whose arguments are all constants written in the answer (in the call, or
held in a variable: the very objects of the compiled code) is also logged as {kind: "literal",
text}: text the answer wrote rather than computed (the `echo` of a Python answer). Text rebuilt
at run time from such constants (formatting, `int("300")`) is not caught this way: such an
answer still has to have called the library with the expected arguments, and to know exact
values only a real run prints.

Standard library only. The recorder never changes what a call does or returns.
"""

import ast
import builtins
import inspect
import json
import os
import sys
import traceback
import types

MAX_RECORDS = 2000
MAX_TEXT = 2000
#: Calls that read their caller's frame (zero-argument super(), locals(), ...): never wrapped.
FRAME_BOUND = {"super", "locals", "globals", "vars", "dir", "eval", "exec", "breakpoint"}
RECORDER = "__researchgym_call__"


def _literal(node):
    """Whether an expression is made of constants only (f-strings and operators included)."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.JoinedStr):
        return all(_literal(v) for v in node.values)
    if isinstance(node, ast.FormattedValue):
        return _literal(node.value) and (node.format_spec is None or _literal(node.format_spec))
    if isinstance(node, ast.BinOp):
        return _literal(node.left) and _literal(node.right)
    if isinstance(node, ast.UnaryOp):
        return _literal(node.operand)
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return all(_literal(e) for e in node.elts)
    return False


class _RouteCalls(ast.NodeTransformer):
    def __init__(self, first_line):
        self.first_line = first_line

    def visit_Call(self, node):
        self.generic_visit(node)
        if getattr(node, "lineno", 0) < self.first_line:
            return node
        if isinstance(node.func, ast.Name) and node.func.id in FRAME_BOUND:
            return node
        literal = (
            bool(node.args)
            and all(_literal(a) for a in node.args if not isinstance(a, ast.Starred))
            and not any(isinstance(a, ast.Starred) for a in node.args)
        )
        routed = ast.Call(
            func=ast.Name(RECORDER, ast.Load()),
            args=[node.func, ast.Constant(node.lineno), ast.Constant(literal), *node.args],
            keywords=node.keywords,
        )
        return ast.copy_location(routed, node)


def _value(v, depth=0):
    """A JSON-able summary of an argument: scalars as they are, short sequences of scalars."""
    if isinstance(v, bool) or v is None or isinstance(v, (int, float)):
        return v
    if isinstance(v, str):
        return v[:MAX_TEXT]
    if isinstance(v, os.PathLike):
        return os.fspath(v)
    if depth == 0 and isinstance(v, (list, tuple)) and len(v) <= 50:
        items = [_value(x, 1) for x in v]
        if all(x is None or isinstance(x, (bool, int, float, str)) for x in items):
            return items
    item = getattr(v, "item", None)  # numpy scalars
    if depth == 0 and callable(item) and getattr(v, "ndim", None) == 0:
        try:
            return _value(item(), 1)
        except Exception:
            return None
    return None


def _callee(f):
    owner = getattr(f, "__self__", None)
    module = getattr(f, "__module__", None)
    if not module and owner is not None and not isinstance(owner, types.ModuleType):
        module = type(owner).__module__
    if not module:
        module = type(f).__module__
    qualname = getattr(f, "__qualname__", None) or type(f).__qualname__
    return f"{module}:{qualname}"


def _signature(f):
    try:
        signature = inspect.signature(f)
    except (TypeError, ValueError):
        return None
    params = list(signature.parameters.values())
    # compiled classes and bound builtin methods list `self` although it is already bound
    if params and params[0].name == "self" and (isinstance(f, type) or getattr(f, "__self__", None) is not None):
        signature = signature.replace(parameters=params[1:])
    return signature


def _arguments(f, args, kwargs):
    named, positional, defaults = {}, [], {}
    signature = _signature(f)
    bound = None
    if signature is not None:
        try:
            bound = signature.bind_partial(*args, **kwargs)
        except TypeError:
            bound = None
        for param in signature.parameters.values():
            if param.default is not inspect.Parameter.empty:
                value = _value(param.default)
                if value is not None or param.default is None:
                    defaults[param.name] = value
    if bound is None:
        named = {k: _value(v) for k, v in kwargs.items()}
        positional = [_value(v) for v in args]
    else:
        for name, value in bound.arguments.items():
            kind = signature.parameters[name].kind
            if kind is inspect.Parameter.VAR_POSITIONAL:
                positional.extend(_value(v) for v in value)
            elif kind is inspect.Parameter.VAR_KEYWORD:
                named.update({k: _value(v) for k, v in value.items()})
            else:
                named[name] = _value(value)
    return named, positional, defaults


def _constants(code, found):
    """ids of the constants written in the answer that no library result can be by chance:
    strings longer than one character that are not identifiers (the compiler interns those, and
    so may a library), ints outside the interpreter's small-int cache, floats."""
    for value in code.co_consts:
        if isinstance(value, types.CodeType):
            _constants(value, found)
        elif isinstance(value, str):
            if len(value) > 1 and not value.isidentifier():
                found.add(id(value))
        elif isinstance(value, float) or (
            isinstance(value, int) and not isinstance(value, bool) and not -5 <= value <= 256
        ):
            found.add(id(value))
    return found


def main(argv):
    path, first_line = argv[0], int(argv[1])
    packages = {name for name in (argv[2] if len(argv) > 2 else "").split(",") if name}
    hook = sys.modules.get("sitecustomize")
    record = getattr(hook, "RECORD", None)
    if record is None:
        raise SystemExit("researchgym: the judge's run hook is not active; the answer was not run")
    source = open(path, encoding="utf-8").read()
    try:
        tree = _RouteCalls(first_line).visit(ast.parse(source, filename=path))
    except SyntaxError as error:  # reported as `python ANSWER.py` would report it
        sys.stderr.write("".join(traceback.format_exception_only(type(error), error)))
        raise SystemExit(1) from None
    ast.fix_missing_locations(tree)
    code = compile(tree, os.path.abspath(path), "exec")
    state = {"records": 0, "literals": 0}
    seen = set()
    ignored = {"__main__", "builtins", *sys.stdlib_module_names}
    constants = _constants(code, set())
    outputs = {id(sys.stdout), id(sys.stderr), id(sys.__stdout__), id(sys.__stderr__)}

    def recorded(f, line, literal, /, *args, **kwargs):
        try:
            printing = f is builtins.print or (
                getattr(f, "__name__", "") == "write" and id(getattr(f, "__self__", None)) in outputs
            )
            if printing:  # counted apart, so that a flood of calls cannot hide a literal print
                if state["literals"] < MAX_RECORDS and (literal or (args and all(id(a) in constants for a in args))):
                    state["literals"] += 1
                    text = (kwargs.get("sep") or " ").join(str(a) for a in args) + (
                        kwargs.get("end", "\n") if f is builtins.print else ""
                    )
                    record({"kind": "literal", "line": line, "text": text[:MAX_TEXT]})
            elif state["records"] < MAX_RECORDS:
                callee = _callee(f)
                root = callee.split(":", 1)[0].split(".", 1)[0]
                if root in packages if packages else root not in ignored:
                    named, positional, defaults = _arguments(f, args, kwargs)
                    entry = {
                        "kind": "call",
                        "line": line,
                        "callee": callee,
                        "args": named,
                        "positional": positional,
                        "defaults": defaults,
                    }
                    key = json.dumps(entry, sort_keys=True, default=str)
                    if key not in seen:  # a call repeated in a loop is one record
                        seen.add(key)
                        state["records"] += 1
                        record(entry)
        except Exception:
            pass
        return f(*args, **kwargs)

    main_module = types.ModuleType("__main__")
    main_module.__file__ = os.path.abspath(path)
    main_module.__builtins__ = builtins
    setattr(main_module, RECORDER, recorded)
    sys.modules["__main__"] = main_module
    sys.argv = [path]
    try:
        exec(code, main_module.__dict__)
    except SystemExit:
        raise
    except BaseException as error:  # the traceback from the answer's own frames on, as python prints it
        traceback.print_exception(type(error), error, error.__traceback__.tb_next)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main(sys.argv[1:])
