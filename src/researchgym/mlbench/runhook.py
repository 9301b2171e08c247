"""Installed as `sitecustomize.py` on PYTHONPATH for the answer's run only (and for the gold's
parse): records what ran, so the judge can judge what ran rather than what was written.

Activated by the environment variable named in `ENV` ("<log folder>|<token>|<run or stop>"),
which this hook removes from os.environ at once, so programs the target starts do not inherit
it. In every Python process that starts with it, the hook:

- wraps argparse's `parse_known_args` (and click's leaf-command invocation, Typer included):
  the outermost parse appends one JSON line to `<log>/<token>.jsonl`: {kind: "parse", pid,
  program (the module, or the file relative to the workspace, that called the parser, and the
  function), argv0, argv, cwd, namespace, unknown, options, defaults, parser} or {..., error};
  in "stop" mode the process then ends (the gold's parse, before it does any work);
- exposes its record writer as `RECORD`, through which pyanswer.py logs the calls a Python-task
  answer's own code makes;
- in "run" mode, tees what the process writes to fds 1 and 2 into `<log>/<token>.<pid>.out`;
- at exit (in "run" mode), appends {kind: "exit", pid, program (the __main__ module or file),
  argv, cwd, parsed, files: {path: [size, mtime_ns, sha256] or null}} for the expected outputs
  listed in `<log>/<token>.outputs` (after flushing stdout, so a file the
  program's output is redirected into is complete).

Standard library only; every failure inside the hook is swallowed (the program must run as it
would without it).
"""

import os

ENV = "RG_MLB_RUN"
_value = os.environ.pop(ENV, None)


def _install(value):  # noqa: C901 - one closure keeps the hook to a single file
    import argparse
    import atexit
    import enum
    import hashlib
    import json
    import sys

    log_dir, token, mode = value.split("|")
    workspace = os.environ.get("RG_MLB_WORKSPACE", "")
    log_path = os.path.join(log_dir, token + ".jsonl")
    state = {"depth": 0, "parsed": False}
    start_cwd = os.getcwd()
    hook_file = os.path.abspath(__file__)
    argparse_file = os.path.abspath(argparse.__file__)

    def jsonable(v):
        if isinstance(v, enum.Enum):
            v = v.value
        if isinstance(v, (str, int, float, bool)) or v is None:
            return v
        if isinstance(v, os.PathLike):
            return os.fspath(v)
        if isinstance(v, (list, tuple, set, frozenset)):
            return [jsonable(x) for x in v]
        if isinstance(v, dict):
            return {str(k): jsonable(x) for k, x in v.items()}
        return str(getattr(v, "name", v))

    def write(record):
        record["pid"] = os.getpid()
        line = (json.dumps(record) + "\n").encode()
        fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    globals()["RECORD"] = write  # for pyanswer.py, the recorder of a Python-task answer's calls

    def module_path(frame):
        return module_path_of(frame.f_globals.get("__spec__"), frame.f_code.co_filename)

    def module_path_of(spec, filename):
        name = getattr(spec, "name", None)
        if name and name != "__main__":
            name = name.replace(".", "/")
            return name[:-9] if name.endswith("/__main__") else name
        path = os.path.realpath(filename)
        if workspace and (path + "/").startswith(workspace.rstrip("/") + "/"):
            path = os.path.relpath(path, workspace)
        else:
            for marker in ("site-packages/", "dist-packages/"):
                if marker in path:
                    path = path.split(marker, 1)[1]
                    break
        path = path[:-3] if path.endswith(".py") else path
        return path[:-9] if path.endswith("/__init__") else path

    def caller():
        frame = sys._getframe(1)
        while frame is not None and os.path.abspath(frame.f_code.co_filename) in (hook_file, argparse_file):
            frame = frame.f_back
        if frame is None:
            return "?"
        return f"{module_path(frame)}:{frame.f_code.co_name}"

    def common():
        return {
            "kind": "parse",
            "argv0": sys.argv[0] if sys.argv else "",
            "argv": list(sys.argv[1:]),
            "cwd": os.getcwd(),
        }

    def finish():
        state["parsed"] = True
        if mode == "stop":
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:
                    pass
            os._exit(0)

    # ------------------------------------------------------------ argparse
    original_known = argparse.ArgumentParser.parse_known_args

    def defaults_of(parser):
        found = {}
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    for k, v in defaults_of(sub).items():
                        found.setdefault(k, v)
            elif action.dest != argparse.SUPPRESS and action.default is not argparse.SUPPRESS:
                found.setdefault(action.dest, jsonable(action.default))
        for k, v in getattr(parser, "_defaults", {}).items():
            found.setdefault(k, jsonable(v))
        return found

    def options_of(parser):
        found = {}
        for action in parser._actions:
            for option in action.option_strings:
                found.setdefault(option, action.dest)
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    for k, v in options_of(sub).items():
                        found.setdefault(k, v)
        return found

    def known(self, args=None, namespace=None):
        state["depth"] += 1
        outermost = state["depth"] == 1 and not state["parsed"]
        try:
            program = caller() if outermost else ""
            try:
                result = original_known(self, args, namespace)
            except SystemExit as exc:
                if outermost:
                    write(
                        {
                            **common(),
                            "program": program,
                            "parser": "argparse",
                            "error": f"the program's argument parser rejected the arguments (exit status {exc.code})",
                        }
                    )
                    finish()
                raise
            if outermost:
                parsed, extras = result
                write(
                    {
                        **common(),
                        "program": program,
                        "parser": "argparse",
                        "namespace": {k: jsonable(v) for k, v in vars(parsed).items()},
                        "unknown": list(extras),
                        "options": options_of(self),
                        "defaults": defaults_of(self),
                    }
                )
                finish()
            return result
        finally:
            state["depth"] -= 1

    argparse.ArgumentParser.parse_known_args = known

    # --------------------------------------------------------------- click
    def patch_core(core):
        original_invoke = core.Command.invoke

        def invoke(self, ctx):
            if getattr(self, "commands", None) is not None or state["parsed"]:
                return original_invoke(self, ctx)
            try:
                params, options, defaults, context = {}, {}, {}, ctx
                while context is not None:
                    for key, v in context.params.items():
                        params.setdefault(key, jsonable(v))
                    for param in context.command.params:
                        for option in [*getattr(param, "opts", []), *getattr(param, "secondary_opts", [])]:
                            if option.startswith("-"):
                                options.setdefault(option, param.name)
                        try:
                            defaults.setdefault(param.name, jsonable(param.get_default(context)))
                        except Exception:
                            pass
                    context = context.parent
                callback = getattr(self, "callback", None)
                program = (
                    f"{getattr(callback, '__module__', '?').replace('.', '/')}:{getattr(callback, '__name__', '?')}"
                )
                write(
                    {
                        **common(),
                        "program": program,
                        "parser": "click",
                        "namespace": params,
                        "unknown": list(ctx.args),
                        "options": options,
                        "defaults": defaults,
                    }
                )
            except Exception:
                pass
            finish()
            return original_invoke(self, ctx)

        core.Command.invoke = invoke
        exceptions = sys.modules.get(core.__name__.rsplit(".", 1)[0] + ".exceptions")
        usage_error = getattr(exceptions, "UsageError", None)
        if usage_error is not None:
            original_show = usage_error.show

            def show(self, file=None):
                if not state["parsed"]:
                    try:
                        callback = getattr(getattr(getattr(self, "ctx", None), "command", None), "callback", None)
                        program = (
                            f"{getattr(callback, '__module__', '?').replace('.', '/')}:"
                            f"{getattr(callback, '__name__', '?')}"
                        )
                        write(
                            {
                                **common(),
                                "program": program,
                                "parser": "click",
                                "error": "the program's argument parser rejected the arguments: "
                                + self.format_message(),
                            }
                        )
                    except Exception:
                        pass
                    finish()
                return original_show(self, file)

            usage_error.show = show

    class ClickFinder:
        """Patch click's core (or Typer's copy of it) as the program imports it."""

        def find_spec(self, name, path=None, target=None):
            if name not in ("click.core", "typer._click.core"):
                return None
            from importlib.machinery import PathFinder

            spec = PathFinder.find_spec(name, path)
            if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
                return None
            original_exec = spec.loader.exec_module

            def exec_module(module):
                original_exec(module)
                try:
                    patch_core(module)
                except Exception:
                    pass

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, ClickFinder())

    # ------------------------------------------------------ stdout and stderr
    # At the file-descriptor level, so that output written however the program writes it (a
    # stream it reopens from fd 1, a C extension, a forked worker) is seen: fds 1 and 2 become
    # pipes that a thread copies to where they pointed and to `<token>.<pid>.out`.
    import threading

    lock = threading.Lock()
    pumps = []

    def capture():
        out = open(os.path.join(log_dir, f"{token}.{os.getpid()}.out"), "ab")
        for fd in (1, 2):
            try:
                saved = os.dup(fd)
            except OSError:
                continue
            read_end, write_end = os.pipe()
            os.dup2(write_end, fd)
            os.close(write_end)

            def pump(read_end=read_end, saved=saved):
                while True:
                    try:
                        chunk = os.read(read_end, 65536)
                    except OSError:
                        break
                    if not chunk:
                        break
                    view = memoryview(chunk)
                    while view:
                        try:
                            view = view[os.write(saved, view) :]
                        except OSError:
                            break
                    with lock:
                        try:
                            out.write(chunk)
                            out.flush()
                        except Exception:
                            pass
                os.close(read_end)

            thread = threading.Thread(target=pump, daemon=True, name="researchgym-tee")
            thread.start()
            pumps.append((fd, saved, thread))

    def release():
        """Give fds 1 and 2 back and wait until the pipes are drained (at most 3 s)."""
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            try:
                stream.flush()
            except Exception:
                pass
        for fd, saved, _ in pumps:
            try:
                os.dup2(saved, fd)
            except OSError:
                pass
        for _, _, thread in pumps:
            thread.join(timeout=3.0)
        pumps.clear()

    if mode == "run":
        capture()
    else:  # "stop": a program that never parses its arguments is not left to run in full

        def watchdog():
            import time

            time.sleep(float(os.environ.get("RG_MLB_STOP_AFTER_S", "20")))
            if not state["parsed"]:
                os._exit(0)

        threading.Thread(target=watchdog, daemon=True).start()

    # ------------------------------------------------------------ at exit
    def at_exit():
        if mode != "run":
            return
        release()
        files = {}
        try:
            with open(os.path.join(log_dir, token + ".outputs"), encoding="utf-8") as handle:
                wanted = json.load(handle)
        except Exception:
            wanted = []
        for path in wanted:
            try:
                st = os.stat(path)
                digest = hashlib.sha256()
                with open(path, "rb") as handle:
                    for chunk in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(chunk)
                files[path] = [st.st_size, st.st_mtime_ns, digest.hexdigest()]
            except IsADirectoryError:
                files[path] = [0, os.stat(path).st_mtime_ns, "dir"]
            except Exception:
                files[path] = None
        try:
            main = sys.modules.get("__main__")
            argv0 = sys.argv[0] if sys.argv and sys.argv[0] not in ("", "-c", "-") else ""
            filename = getattr(main, "__file__", None) or (os.path.join(start_cwd, argv0) if argv0 else "?")
            program = module_path_of(getattr(main, "__spec__", None), filename)
            write({**common(), "kind": "exit", "program": program, "parsed": state["parsed"], "files": files})
        except Exception:
            pass

    atexit.register(at_exit)


if _value:
    try:
        _install(_value)
    except Exception:  # never break the program
        pass
