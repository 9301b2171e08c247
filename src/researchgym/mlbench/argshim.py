"""Run a program only as far as its argparse parser, and print what the parser made of argv.

    python -c "$(cat argshim.py)" script PATH.py ARGS...  |  module NAME ARGS...  |  console NAME ARGS...

It is passed with -c, never run as a file, so that no folder of its own lands on sys.path: the
program sees the sys.path it would have had (its own folder for a script, the working folder
for -m), and a repository's source tree never shadows the installed package.

Runs inside the judging sandbox, in the repository, with the repository's own code: whichever
ArgumentParser the program builds parses the arguments, and the first (outermost) parse prints
one line `@@argshim {json}` and ends the process before the program does any work. The JSON is
{"namespace": {...}, "options": {option string: dest}} (values made JSON-able), or
{"error": "..."} when the parser rejects the arguments, or {"no_parser": true} when the program
used neither argparse nor click (Typer's commands are click commands).
"""

import argparse
import enum
import importlib
import json
import os
import runpy
import sys

MARK = "@@argshim "
_original_known = argparse.ArgumentParser.parse_known_args
_original_parse = argparse.ArgumentParser.parse_args
_state = {"depth": 0, "strict": False}


def _jsonable(value):
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(getattr(value, "name", value))  # open files (argparse.FileType) by name


def _emit(payload) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.write(1, (MARK + json.dumps(payload) + "\n").encode())
    os._exit(0)


def _known(self, args=None, namespace=None):
    _state["depth"] += 1
    outermost = _state["depth"] == 1
    try:
        namespace, extras = _original_known(self, args, namespace)
    except SystemExit as exc:
        if outermost:
            _emit({"error": f"the program's argument parser rejected the arguments (exit status {exc.code})"})
        raise
    finally:
        _state["depth"] -= 1
    if outermost:
        if _state["strict"] and extras:
            _emit({"error": f"unrecognized arguments: {' '.join(extras)}"})
        _emit(
            {
                "namespace": {k: _jsonable(v) for k, v in vars(namespace).items()},
                "unknown": extras,
                "options": _option_destinations(self),
            }
        )
    return namespace, extras


def _option_destinations(parser) -> dict[str, str]:
    """Option string -> destination, sub-parsers included (`--smooth-method` -> `bleu_smooth_method`)."""
    found: dict[str, str] = {}
    for action in parser._actions:
        for option in action.option_strings:
            found.setdefault(option, action.dest)
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                for option, dest in _option_destinations(sub).items():
                    found.setdefault(option, dest)
    return found


def _parse(self, args=None, namespace=None):
    if _state["depth"] == 0:
        _state["strict"] = True
    return _original_parse(self, args, namespace)


def _error(self, message):
    if _state["depth"] <= 1:
        _emit({"error": f"the program's argument parser rejected the arguments: {message}"})
    raise SystemExit(2)


argparse.ArgumentParser.parse_known_args = _known  # type: ignore[method-assign]
argparse.ArgumentParser.parse_args = _parse  # type: ignore[method-assign]
argparse.ArgumentParser.error = _error  # type: ignore[method-assign]


def _patch_click(package: str) -> None:
    """Click (and the copy Typer carries as typer._click): a leaf command about to run reports
    the parameters its parser produced instead; a usage error reports the rejection."""
    try:
        core = importlib.import_module(f"{package}.core")
        exceptions = importlib.import_module(f"{package}.exceptions")
    except Exception:
        return
    original_invoke = core.Command.invoke

    def invoke(self, ctx):
        if getattr(self, "commands", None) is not None:  # a group: its sub-command comes next
            return original_invoke(self, ctx)
        params, options, context = {}, {}, ctx
        while context is not None:
            for key, value in context.params.items():
                params.setdefault(key, _jsonable(value))
            for param in context.command.params:
                for option in [*getattr(param, "opts", []), *getattr(param, "secondary_opts", [])]:
                    if option.startswith("-"):
                        options.setdefault(option, param.name)
            context = context.parent
        _emit({"namespace": params, "unknown": list(ctx.args), "options": options, "parser": "click"})

    def show(self, file=None):
        _emit(
            {
                "error": f"the program's argument parser rejected the arguments: {self.format_message()}",
                "parser": "click",
            }
        )

    core.Command.invoke = invoke
    for name in ("ClickException", "UsageError"):
        if hasattr(exceptions, name):
            getattr(exceptions, name).show = show


for _package in ("click", "typer._click"):
    _patch_click(_package)


def main() -> None:
    mode, target, *argv = sys.argv[1:]
    try:
        if mode == "script":
            sys.argv = [target, *argv]
            sys.path[0] = os.path.dirname(os.path.abspath(target))  # as `python PATH.py` would have it
            runpy.run_path(target, run_name="__main__")
        elif mode == "module":
            sys.argv = [target, *argv]
            runpy.run_module(target, run_name="__main__", alter_sys=True)
        else:
            sys.path[:] = [p for p in sys.path if p not in ("", os.getcwd())]  # as an installed script
            from importlib.metadata import entry_points

            found = list(entry_points(group="console_scripts", name=target))
            if not found:
                _emit({"no_parser": True, "detail": f"no console script named {target}"})
            sys.argv = [target, *argv]
            found[0].load()()
    except SystemExit:
        pass
    except BaseException as exc:  # the program failed before (or without) parsing: fall back
        _emit({"no_parser": True, "detail": f"{type(exc).__name__}: {exc}"[:300]})
    _emit({"no_parser": True})


if __name__ == "__main__":
    main()
