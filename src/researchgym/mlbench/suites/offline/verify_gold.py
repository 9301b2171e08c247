"""Run and check the gold command of every sample of the offline ML-Bench suite.

    .venv/bin/python src/researchgym/mlbench/suites/offline/verify_gold.py
        [--only 3,17] [--repo spacy] [--sdist-dir DIR] [--keep] [--no-netns]

For each sample of samples.jsonl (next to this file):

1. The sdist `<package>-<version>.tar.gz` of the repository named by its `repo` field (a pin in
   repos.yaml) is taken from --sdist-dir (or $MLBENCH_SDIST_DIR) when it is there, else from
   $RESEARCHGYM_CACHE/mlbench/sdists (default ~/.cache/researchgym), else downloaded there from the
   package index's JSON listing (PEP 691); its SHA-256 must match the pin. `pip download` is not
   used: for gensim and spaCy it builds metadata, which needs Cython and their other build tools.
2. The sdist is extracted afresh into a temporary folder for each sample (never a shared tree,
   which other tools may have written into). In the sample's `path` there, bash runs
   `setup` (300 s at most), then the gold `output` with a limit of `timeout_s` (a Python task's
   `prefix_code` and `output` written to one file and run with python, as the judge does); both with the
   venv's bin first on PATH (the venv of the python running this script, or --venv), a private
   HOME, HF_HUB_OFFLINE=1, proxies pointing nowhere, and, when `unshare -rn` works here, inside a
   network namespace that has no network at all.
3. The sample passes when the command exits 0 in time, every file of `expected_outputs` exists
   and was created or changed by the command, and `expected_stdout` (a regular expression, searched
   with re.MULTILINE) matches its stdout with ANSI colours stripped. A sample also fails when its
   `oracle` is not verbatim text of `oracle_source` in the tree.
4. Warnings (do not fail): a key of `arguments` that the program's own `--help` does not show as an
   option (-key / --key) or positional name; a dotted key (a spaCy config override) whose
   [section] key is not in the .cfg file of the command; a value that is not a token of the command.

Prints one line per sample (status, time / limit, key, command) and a summary per repository;
exit status 1 when any sample fails.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.parse
import urllib.request
from collections import defaultdict
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
SETUP_TIMEOUT = 300
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
NOWHERE = "http://127.0.0.1:9"
BASH_TYPES = ("bash script", "bash", "shell")  # as schema.py reads `type`; any other type is Python code


class Skip(Exception):
    """Stop checking a sample: it has already failed."""


# ------------------------------------------------------------------ repositories


def cache_root() -> Path:
    return Path(os.environ.get("RESEARCHGYM_CACHE") or Path.home() / ".cache" / "researchgym").expanduser()


def index_url() -> str:
    return (os.environ.get("PIP_INDEX_URL") or "https://pypi.org/simple").rstrip("/")


def download_sdist(pin: dict, folder: Path) -> Path:
    name = re.sub(r"[-_.]+", "-", pin["package"]).lower()
    request = urllib.request.Request(
        f"{index_url()}/{name}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        listing = json.load(response)
    wanted = {f"{stem}-{pin['version']}.tar.gz" for stem in (name, name.replace("-", "_"), pin["package"])}
    entry = next((f for f in listing.get("files", []) if f.get("filename") in wanted), None)
    if entry is None:
        raise RuntimeError(f"the package index has no sdist of {pin['package']}=={pin['version']}")
    archive = folder / entry["filename"]
    with urllib.request.urlopen(urllib.parse.urljoin(f"{index_url()}/{name}/", entry["url"]), timeout=300) as r:
        archive.write_bytes(r.read())
    expected = entry.get("hashes", {}).get("sha256")
    if expected and sha256(archive) != expected:
        raise RuntimeError(f"{archive.name}: SHA-256 does not match the package index")
    return archive


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def sdist_archive(pin: dict, sdist_dir: Path | None) -> Path:
    """The pinned sdist: from --sdist-dir, else the cache, else downloaded into the cache."""
    # the index names some sdists with the normalised name (scikit-learn's is scikit_learn-1.9.1.tar.gz)
    stems = dict.fromkeys([pin["package"], re.sub(r"[-_.]+", "_", pin["package"]).lower()])
    filenames = [f"{stem}-{pin['version']}.tar.gz" for stem in stems]
    cache = cache_root() / "mlbench" / "sdists"
    for folder, filename in ((f, n) for f in (sdist_dir, cache) for n in filenames):
        if folder and (folder / filename).is_file():
            archive = folder / filename
            break
    else:
        cache.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".download-", dir=cache))
        try:
            downloaded = download_sdist(pin, staging)
            archive = cache / downloaded.name
            downloaded.replace(archive)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    if pin.get("sha256") and sha256(archive) != pin["sha256"]:
        raise RuntimeError(f"{archive}: SHA-256 differs from the pin in repos.yaml")
    return archive


def extract(pin: dict, archive: Path, dest: Path) -> Path:
    """A pristine tree for one sample: extracted afresh, so nothing a previous run (or another
    tool sharing a cache) wrote into a tree can leak into this one."""
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    top = dest / (pin.get("root") or f"{pin['package']}-{pin['version']}")
    if not top.is_dir():
        raise RuntimeError(f"{archive.name} has no top folder {top.name}; fix `root` in repos.yaml")
    return top


# ------------------------------------------------------------------ running


def netns_works() -> bool:
    if not shutil.which("unshare"):
        return False
    try:
        return subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def make_env(venv_bin: Path, home: Path) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "SACREBLEU_FORMAT", "PYTHONSTARTUP")
    }
    home.mkdir(parents=True, exist_ok=True)
    env.update(
        {
            "PATH": f"{venv_bin}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
            "VIRTUAL_ENV": str(venv_bin.parent),
            "HOME": str(home),
            "SACREBLEU": str(home / ".sacrebleu"),
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "PIP_NO_INDEX": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "COLUMNS": "200",
            "http_proxy": NOWHERE,
            "https_proxy": NOWHERE,
            "HTTP_PROXY": NOWHERE,
            "HTTPS_PROXY": NOWHERE,
            "ALL_PROXY": NOWHERE,
            "no_proxy": "",
            "NO_PROXY": "",
        }
    )
    return env


def run_bash(script: str, cwd: Path, env: dict, timeout: float, netns: bool) -> tuple[int | None, str, str, float]:
    """(exit status or None on timeout, stdout, stderr, seconds)."""
    argv = (["unshare", "-rn"] if netns else []) + ["bash", "-c", script]
    start = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        code = None
    return code, out, err, time.monotonic() - start


def snapshot(path: Path):
    if path.is_file():
        st = path.stat()
        return (st.st_mtime_ns, st.st_size, sha256(path))
    return "dir" if path.is_dir() else None


# ------------------------------------------------------------------ argument checks


def help_argv(command: str) -> list[str]:
    tokens = shlex.split(command.split("|")[-1])
    words = []
    for t in tokens:
        if t.startswith((">", "<", "2>")):
            break
        words.append(t)
    if words[0] == "python":
        prog, rest = (words[:3], words[3:]) if words[1] == "-m" else (words[:2], words[2:])
    else:
        prog, rest = words[:1], words[1:]
    for t in rest:  # subcommands (spacy init config, spacy benchmark speed, ...)
        if not re.fullmatch(r"[a-z][a-z-]*", t):
            break
        prog.append(t)
    return prog + ["--help"]


def config_has(cfg: Path, dotted: str) -> bool:
    section, _, name = dotted.rpartition(".")
    current = None
    for line in cfg.read_text(errors="replace").splitlines():
        header = re.fullmatch(r"\s*\[([^\]]+)\]\s*", line)
        if header:
            current = header.group(1).strip()
        elif current == section and re.match(rf"\s*{re.escape(name)}\s*=", line):
            return True
    return False


def argument_warnings(sample: dict, help_text: str, workdir: Path) -> list[str]:
    warnings = []
    tokens = shlex.split(sample["output"].replace("|", " "))
    for key, value in sample["arguments"].items():
        if "." in key:  # config override: --section.key value
            cfgs = [workdir / t for t in tokens if t.endswith(".cfg")]
            if f"--{key}" not in tokens:
                warnings.append(f"override --{key} is not in the command")
            elif not cfgs or not cfgs[0].is_file() or not config_has(cfgs[0], key):
                warnings.append(f"override {key}: not found in {cfgs[0].name if cfgs else 'any .cfg'}")
        elif not (
            re.search(rf"(?<![\w-])--?{re.escape(key)}(?![\w-])", help_text)
            or re.search(rf"(?<![\w-]){re.escape(key)}(?![\w-])", help_text, re.IGNORECASE)
        ):
            warnings.append(f"'{key}' is not an option or positional in --help")
        if value != "true" and not all(part in tokens or f"--{key}={part}" in tokens for part in value.split()):
            warnings.append(f"value '{value}' of '{key}' is not a token of the command")
    return warnings


# ------------------------------------------------------------------ main


def shown(code: str) -> str:
    """A command as one line: Python code is shown by its first line."""
    lines = code.strip().splitlines() or [""]
    return lines[0] + (f" ... ({len(lines)} lines)" if len(lines) > 1 else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=Path, default=HERE / "samples.jsonl")
    parser.add_argument("--repos", type=Path, default=HERE / "repos.yaml")
    parser.add_argument("--only", help="comma-separated sample ids")
    parser.add_argument("--repo", help="only the samples of this repository")
    parser.add_argument(
        "--sdist-dir",
        type=Path,
        default=os.environ.get("MLBENCH_SDIST_DIR"),
        help="folder holding <package>-<version>.tar.gz files (else downloaded)",
    )
    parser.add_argument("--venv", type=Path, default=Path(sys.executable).parent.parent)
    parser.add_argument("--keep", action="store_true", help="keep the temporary work folders")
    parser.add_argument("--no-netns", action="store_true", help="do not run in a network namespace")
    args = parser.parse_args()

    pins = {p["name"]: p for p in yaml.safe_load(args.repos.read_text())}
    samples = [json.loads(line) for line in args.samples.read_text().splitlines() if line.strip()]
    problems = []
    ids = [s["id"] for s in samples]
    if len(ids) != len(set(ids)):
        problems.append("sample ids are not unique")
    if args.only:
        wanted = {int(x) for x in args.only.split(",")}
        samples = [s for s in samples if s["id"] in wanted]
    if args.repo:
        samples = [s for s in samples if s["repo"] == args.repo]

    venv_bin = args.venv / "bin"
    netns = not args.no_netns and netns_works()
    print(
        f"{len(samples)} samples; venv {args.venv}; network: "
        f"{'none (unshare -rn)' if netns else 'not isolated (proxies point nowhere)'}"
    )
    archives = {}
    for name in sorted({s["repo"] for s in samples}):
        archives[name] = sdist_archive(pins[name], args.sdist_dir)
        print(f"repository {name}: {archives[name]} (SHA-256 as pinned)")

    results = []  # (sample, ok, seconds)
    help_cache: dict[tuple, tuple[int | None, str]] = {}
    warn_count = 0
    for s in samples:
        key = f"{s['repo']}#{s['id']}"
        fails, warns = [], []
        seconds = 0.0
        work = Path(tempfile.mkdtemp(prefix=f"mlbench-gold-{s['repo']}-{s['id']}-"))
        try:
            root = extract(pins[s["repo"]], archives[s["repo"]], work / "src")
            source = root / s.get("oracle_source", "")
            if not source.is_file():
                fails.append(f"oracle_source {s.get('oracle_source')!r} is not a file")
            elif s["oracle"] not in source.read_text(encoding="utf-8", errors="replace"):
                fails.append(f"oracle is not verbatim text of {s['oracle_source']}")
            cwd = (root / s["path"]).resolve()
            if not cwd.is_dir():
                fails.append(f"path {s['path']} does not exist")
                raise Skip
            env = make_env(venv_bin, work / "home")
            if s.get("setup", "").strip():
                code, out, err, _ = run_bash("set -eo pipefail\n" + s["setup"], cwd, env, SETUP_TIMEOUT, netns)
                if code != 0:
                    fails.append(
                        f"setup {'timed out' if code is None else f'exited {code}'}: "
                        + " | ".join((err or out).strip().splitlines()[-3:])
                    )
                    raise Skip
            before = {p: snapshot(cwd / p) for p in s.get("expected_outputs", [])}
            python_task = s.get("type", "Bash Script").strip().lower() not in BASH_TYPES
            if python_task:  # as the judge runs it: prefix_code, then the code, as one file in the folder
                (cwd / ".verify-answer.py").write_text((s.get("prefix_code", "") + "\n" + s["output"]).strip() + "\n")
                command = "python .verify-answer.py"
            else:
                command = "set -o pipefail\n" + s["output"]
            code, out, err, seconds = run_bash(command, cwd, env, s["timeout_s"], netns)
            if code is None:
                fails.append(f"timed out after {s['timeout_s']}s")
            elif code != 0:
                fails.append(f"exited {code}: " + " | ".join(ANSI.sub("", err or out).strip().splitlines()[-3:]))
            for p, old in before.items():
                new = snapshot(cwd / p)
                if new is None:
                    fails.append(f"missing output {p}")
                elif old is not None and old == new:
                    fails.append(f"output {p} was not changed by the command")
            pattern = s.get("expected_stdout")
            if pattern and code == 0 and not re.search(pattern, ANSI.sub("", out), re.MULTILINE):
                fails.append(f"stdout does not match {pattern!r}: {ANSI.sub('', out).strip()[:200]!r}")
            if python_task:
                raise Skip  # no command line whose options could be checked against a --help
            argv = help_argv(s["output"])
            cache_key = (s["repo"], s["path"], tuple(argv))
            if cache_key not in help_cache:
                hcode, hout, herr, _ = run_bash(shlex.join(argv), cwd, env, 120, netns)
                help_cache[cache_key] = (hcode, ANSI.sub("", hout + herr))
            hcode, help_text = help_cache[cache_key]
            if hcode != 0 and "usage" not in help_text.lower():
                warns = [f"`{shlex.join(argv)}` failed, so the argument names were not checked"]
            else:
                warns = argument_warnings(s, help_text, cwd)
        except Skip:
            pass
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
        ok = not fails
        results.append((s, ok, seconds))
        warn_count += len(warns)
        print(
            f"{'PASS' if ok else 'FAIL'} {key:14} {seconds:6.1f}s / {s['timeout_s']:>4}s  "
            f"[{s['path']}] {shown(s['output'])}",
            flush=True,
        )
        for f in fails:
            print(f"     FAIL: {f}")
        for w in warns:
            print(f"     warning: {w}")
        if args.keep:
            print(f"     kept: {work}")

    print("\nsummary")
    by_repo = defaultdict(list)
    for s, ok, sec in results:
        by_repo[s["repo"]].append((ok, sec))
    for name, rows in sorted(by_repo.items()):
        secs = [sec for _, sec in rows]
        print(
            f"  {name:10} {sum(ok for ok, _ in rows)}/{len(rows)} passed; command time total {sum(secs):.1f}s, "
            f"mean {sum(secs) / len(secs):.1f}s, max {max(secs):.1f}s"
        )
    passed = sum(ok for _, ok, _ in results)
    print(f"  all        {passed}/{len(results)} passed, {warn_count} warning(s)")
    for p in problems:
        print(f"  FAIL: {p}")
    return 0 if passed == len(results) and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
