"""Installed as `sitecustomize.py` on PYTHONPATH for the answer's run only (and for the gold's
parse): records what ran, so the judge can judge what ran rather than what was written.

Activated by the environment variable named in `ENV` ("<judge socket>|<token>|<run or stop>"),
which this hook removes from os.environ at once, so programs the target starts do not inherit
it. In every Python process that starts with it, the hook connects to the judge's evidence
socket (evidence.py: the judge learns from the kernel which process it is, and from its trace
which program that process runs; nothing is written to a file the sandbox can reach) and:

- first of all adds an audit hook that reports, before it runs, every module-level code object
  executed from a file outside the interpreter's own prefixes (the program, the repository's
  modules, anything in /tmp or the home folder): {kind: "code", path, real, sha256 of the
  file's bytes, same: whether those bytes compile to the very code that is about to run}; and
  bytecode without source and extension modules from such places (same: null). The judge
  compares them with the repository as it was before the answer ran, so a program changed,
  swapped back and forth, shadowed or replaced by planted bytecode is seen;
- wraps argparse's `parse_known_args` (and click's leaf-command invocation, Typer included):
  the outermost parse sends one record: {kind: "parse", program (the module, or the file
  relative to the workspace, that called the parser, and the function), argv0, argv, cwd,
  namespace, unknown, options, defaults, parser} or {..., error}; in "stop" mode the process
  then ends (the gold's parse, before it does any work);
- exposes its record sender as `RECORD`, through which pyanswer.py logs the calls a
  Python-task answer's own code makes;
- in "run" mode, sends what the process writes to fds 1 and 2 (and passes it on);
- at exit (in "run" mode), sends {kind: "exit", program (the __main__ module or file), argv,
  cwd, parsed, files: {path: [size, mtime_ns, sha256] or null}} for the expected outputs
  listed in `<socket's folder>/<token>.outputs` (after flushing stdout, so a file the
  program's output is redirected into is complete).

Standard library only; every failure inside the hook is swallowed (the program must run as it
would without it).
"""

import os

ENV = "RG_MLB_RUN"
_value = os.environ.pop(ENV, None)


def _install(value):  # noqa: C901 - one closure keeps the hook to a single file
    import sys

    # The hook's own imports come from the interpreter's prefixes only: a module of the same
    # name in another PYTHONPATH folder must not stand in for them.
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, os.path.dirname(__file__)}
    trusted = tuple({p.rstrip(os.sep) + os.sep for p in prefixes} | {os.path.realpath(p) + os.sep for p in prefixes})
    saved_path = list(sys.path)
    sys.path[:] = [p for p in sys.path if (os.path.realpath(p) + os.sep).startswith(trusted)]
    try:
        import argparse
        import atexit
        import ctypes
        import enum
        import hashlib
        import json
        import socket
        import struct
        import threading
        from importlib import machinery
    finally:
        sys.path[:] = saved_path

    socket_path, token, mode = value.split("|")
    log_dir = os.path.dirname(socket_path)
    workspace = os.environ.get("RG_MLB_WORKSPACE", "")
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

    # ----------------------------------------------------- the judge's socket
    channel = {"sock": None, "pid": None, "lock": threading.Lock()}
    header = struct.Struct(">I")

    def send(kind, body):
        with channel["lock"]:
            if channel["pid"] != os.getpid():  # first use, or a forked child: its own connection
                channel["pid"] = os.getpid()
                channel["sock"] = None
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.settimeout(10.0)
                    sock.connect(socket_path)
                    hello = b"H" + token.encode()
                    sock.sendall(header.pack(len(hello)) + hello)
                    if sock.recv(1) != b"\x01":
                        raise OSError("the judge did not answer")
                    sock.settimeout(None)
                    channel["sock"] = sock
                except OSError:
                    sock.close()
            if channel["sock"] is not None:
                frame = kind + body
                try:
                    channel["sock"].sendall(header.pack(len(frame)) + frame)
                except OSError:
                    channel["sock"] = None

    def after_fork():
        channel["lock"] = threading.Lock()
        channel["pid"] = None

    os.register_at_fork(after_in_child=after_fork)

    def write(record):
        record["pid"] = os.getpid()
        send(b"R", json.dumps(record).encode())

    # ------------------------------------------------- what code runs (audit)
    # Before any code of the program runs: audit hooks cannot be removed, and the "exec" event
    # comes with the very code object about to run, before it runs.
    code_type = type(_install.__code__)
    main_script = os.path.realpath(sys.argv[0]) if sys.argv and sys.argv[0] not in ("", "-c", "-m", "-") else ""
    reported = set()
    guard = threading.local()

    def untrusted(path):
        if not isinstance(path, str) or not path.startswith("/"):
            return False
        return not (path.startswith(trusted) and (os.path.realpath(path) + os.sep).startswith(trusted))

    def report_code(path, code, name=None):
        real = os.path.realpath(path)
        try:
            with open(real, "rb") as handle:
                data = handle.read()
        except OSError:
            data = None
        same = None
        if code is not None:
            try:
                same = data is not None and compile(data, name or path, "exec", dont_inherit=True) == code
            except Exception:
                same = False
        sha = hashlib.sha256(data).hexdigest() if data is not None else None
        if (real, sha, same) not in reported:
            reported.add((real, sha, same))
            write({"kind": "code", "path": path, "real": real, "sha": sha, "same": same})

    def audit(event, args):
        if getattr(guard, "busy", False) or event not in ("exec", "ctypes.dlopen"):
            return
        guard.busy = True
        try:
            if event == "exec":
                code = args[0] if args else None
                name = code.co_filename if type(code) is code_type else None
                # a relative name (runpy.run_path("x.py"), compile(..., "x.py")) is a file too
                path = os.path.abspath(name) if name and not name.startswith("<") else name
                if untrusted(path) and (path.endswith(".py") or os.path.realpath(path) == main_script):
                    report_code(path, code, name)
            elif args and isinstance(args[0], str) and "/" in args[0] and untrusted(os.path.abspath(args[0])):
                report_code(os.path.abspath(args[0]), None)
        except Exception:
            pass
        finally:
            guard.busy = False

    sys.addaudithook(audit)

    def reporting(original):
        def get_data(self, path):
            data = original(self, path)
            if untrusted(path) and not getattr(guard, "busy", False):
                guard.busy = True
                try:
                    real = os.path.realpath(path)
                    sha = hashlib.sha256(data).hexdigest()
                    if (real, sha, None) not in reported:
                        reported.add((real, sha, None))
                        write({"kind": "code", "path": path, "real": real, "sha": sha, "same": None})
                except Exception:
                    pass
                finally:
                    guard.busy = False
            return data

        return get_data

    # bytecode without its source is not compiled from a file the judge can compare: the exact
    # bytes loaded are reported; an extension module is hashed as it is loaded
    machinery.SourcelessFileLoader.get_data = reporting(machinery.SourcelessFileLoader.get_data)
    original_create = machinery.ExtensionFileLoader.create_module

    def create_module(self, spec):
        origin = getattr(spec, "origin", None)
        if untrusted(origin) and not getattr(guard, "busy", False):
            guard.busy = True
            try:
                report_code(origin, None)
            except Exception:
                pass
            finally:
                guard.busy = False
        return original_create(self, spec)

    machinery.ExtensionFileLoader.create_module = create_module

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
    pumps = []

    def capture():
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
                    try:
                        send(b"O", chunk)
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

    # Other processes of the sandbox (the same user) could otherwise open this one's
    # /proc/<pid>/fd/1 (the pipe read above: text written there would count as the program's
    # output) or /proc/<pid>/mem. A process that is not dumpable keeps them to itself.
    try:
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0
    except Exception:
        pass

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
    def output_states():
        """Each expected output's [size, mtime, digest] ("dir" for a folder), or None."""
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
        return files

    # What the outputs were when this process started, before any code of the program ran: the
    # judge counts an output as the program's only if it changed while the program ran (an answer
    # that wrote it first, then ran a program that never wrote it, passed before).
    files_at_start = output_states() if mode == "run" else {}

    def at_exit():
        if mode != "run":
            return
        release()
        files = output_states()
        try:
            main = sys.modules.get("__main__")
            argv0 = sys.argv[0] if sys.argv and sys.argv[0] not in ("", "-c", "-") else ""
            filename = getattr(main, "__file__", None) or (os.path.join(start_cwd, argv0) if argv0 else "?")
            program = module_path_of(getattr(main, "__spec__", None), filename)
            write(
                {
                    **common(),
                    "kind": "exit",
                    "program": program,
                    "parsed": state["parsed"],
                    "files": files,
                    "files_at_start": files_at_start,
                }
            )
        except Exception:
            pass

    atexit.register(at_exit)


if _value:
    try:
        _install(_value)
    except Exception:  # never break the program
        pass
