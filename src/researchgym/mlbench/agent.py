"""ML-Bench's agent setting, and ML-Agent: the benchmark's baseline agent, re-implemented.

An episode per sample: a bubblewrap sandbox holds a fresh copy of the repository (no network),
the sample's setup has made its inputs, the agent works in it through shell commands and must
leave `run.sh` in the sample's folder; the judge then runs that script on a fresh copy of the
repository, exactly as in the LLM setting (arguments, type, execution). Every step
(command, output, model call) is appended to a JSONL trajectory as it happens.

ML-Agent, with any `Model`:
1. lists the repository's README files and asks the model which one is most relevant to the task
   (falling back to BM25 over the files' text when the reply names none of them);
2. reads that README and asks for the command; the model may instead answer `READ <script>` when
   the README is not enough, and then
3. is shown the argument-parsing lines of that script (`add_argument`, options, defaults), and
   asked again;
4. writes the command into `run.sh`.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Protocol

from researchgym.mlbench.context import bm25_window
from researchgym.mlbench.data import ANSWER_KEYS
from researchgym.mlbench.extract import extract_code
from researchgym.mlbench.judge import Check, Judge, Judgment
from researchgym.mlbench.schema import Sample
from researchgym.models.base import Message, Model
from researchgym.sandbox import Limits, SandboxSpec, create_sandbox
from researchgym.snapshot import read_regular_file

MAX_README_CHARS = 12_000
MAX_PARSER_LINES = 120


class Workspace:
    """The agent's view: shell commands in the sandboxed repository, each logged."""

    def __init__(self, box: Any, sample: Sample, log: Trajectory) -> None:
        self.box, self.sample, self.log = box, sample, log
        #: The repository's root as the sandbox shows it (bwrap: /home/agent/workspace; the local
        #: sandbox: the host folder itself).
        self.root = box.workspace_path
        self.folder = posixpath.normpath(posixpath.join(self.root, sample.path))

    def run(self, command: str, timeout_s: float = 30.0) -> str:
        result = self.box.run(f"cd {shlex.quote(self.folder)} && {command}", timeout_s=timeout_s)
        self.log.write("command", command=command, output=result.output[-4000:], exit_code=result.exit_code)
        return result.output


class Trajectory:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, kind: str, **fields: Any) -> None:
        if self.path is None:
            return
        with self.path.open("a") as out:
            out.write(json.dumps({"kind": kind, "time": time.time(), **fields}) + "\n")


class RepoAgent(Protocol):
    name: str

    def solve(self, sample: Sample, workspace: Workspace) -> None:
        """Work in the repository and leave run.sh in the sample's folder."""


class MLAgent:
    """README ranking, README reading, argument-parser reading, then the command."""

    name = "ml-agent"

    def __init__(self, model: Model) -> None:
        self.model = model
        self.cost = 0.0

    def _ask(self, workspace: Workspace, messages: list[Message]) -> str:
        response = self.model.query(messages)
        self.cost += response.cost or 0.0
        workspace.log.write("model", messages=messages, reply=response.text, cost=response.cost)
        return response.text

    def solve(self, sample: Sample, workspace: Workspace) -> None:
        listing = workspace.run(
            f"cd {shlex.quote(workspace.root)} && find . -iname 'readme*' -type f | sort | head -200"
        )
        readmes = [line.strip() for line in listing.splitlines() if line.strip().startswith("./")]
        chosen = self._choose_readme(sample, workspace, readmes)
        readme = (
            workspace.run(f"cd {shlex.quote(workspace.root)} && head -c {MAX_README_CHARS} {shlex.quote(chosen)}")
            if chosen
            else ""
        )
        system = (
            "You are ML-Agent. You write the exact bash command that does a task with a repository. "
            "Reply with one ```bash block holding the command, run from the task's folder. If the README "
            "does not say which arguments a script takes, reply `READ <path of the script>` instead."
        )
        task = f"Task folder: {sample.path}\nTask: {sample.instruction}\n\nREADME ({chosen or 'none found'}):\n{readme}"
        messages: list[Message] = [{"role": "system", "content": system}, {"role": "user", "content": task}]
        reply = self._ask(workspace, messages)
        wanted = re.search(r"^\s*READ\s+(\S+)", reply, re.MULTILINE)
        if wanted and "```" not in reply:
            script = wanted.group(1).strip("`'\"")
            code = workspace.run(
                f"grep -n -E 'add_argument|ArgumentParser|option\\(|argv|def main' "
                f"{shlex.quote(script)} | head -{MAX_PARSER_LINES}"
            )
            messages += [
                {"role": "assistant", "content": reply},
                {
                    "role": "user",
                    "content": f"Argument parsing in {script}:\n{code}\n\nNow reply with the "
                    "```bash block holding the command.",
                },
            ]
            reply = self._ask(workspace, messages)
        language, command = extract_code(reply, bash_task=sample.is_bash)
        heredoc = "RESEARCHGYM_RUN_SH"
        workspace.run(f"cat > run.sh <<'{heredoc}'\n{command}\n{heredoc}")

    def _choose_readme(self, sample: Sample, workspace: Workspace, readmes: list[str]) -> str | None:
        if not readmes:
            return None
        if len(readmes) == 1:
            return readmes[0]
        numbered = "\n".join(f"{i + 1}. {path}" for i, path in enumerate(readmes))
        reply = self._ask(
            workspace,
            [
                {
                    "role": "system",
                    "content": "You pick the README file most useful for a task. Reply with its path only.",
                },
                {
                    "role": "user",
                    "content": f"Task (in folder {sample.path}): {sample.instruction}\n\nREADME files:\n{numbered}",
                },
            ],
        )
        for path in sorted(readmes, key=len, reverse=True):
            if path in reply or path.lstrip("./") in reply:
                return path
        number = re.search(r"\b(\d+)\b", reply)
        if number and 1 <= int(number.group(1)) <= len(readmes):
            return readmes[int(number.group(1)) - 1]
        # The model named none of them: the README whose text BM25 ranks highest for the task.
        best = bm25_window(Path(workspace.box.spec.workspace), sample.instruction)
        match = re.match(r"\((.+?)\)", best)
        return f"./{match.group(1)}" if match and f"./{match.group(1)}" in readmes else readmes[0]


def run_agent_episode(
    agent: RepoAgent,
    sample: Sample,
    repo_tree: Path,
    *,
    trajectory: Path | None = None,
    sandbox: str = "bwrap",
    judge_mode: str = "strict",
) -> Judgment:
    """One agent-setting episode: a fresh repository copy, the agent, then the judge on run.sh."""
    return play_agent_episode(agent, sample, repo_tree, trajectory=trajectory, sandbox=sandbox, judge_mode=judge_mode)[
        0
    ]


def play_agent_episode(
    agent: RepoAgent,
    sample: Sample,
    repo_tree: Path,
    *,
    trajectory: Path | None = None,
    sandbox: str = "bwrap",
    judge_mode: str = "strict",
) -> tuple[Judgment, str | None]:
    """run_agent_episode, also giving the run.sh the agent left (None if it left none)."""
    log = Trajectory(trajectory)
    log.write("reset", sample=sample.key, instruction=sample.instruction, agent=agent.name)
    with tempfile.TemporaryDirectory(prefix="mlbench-agent-") as tmp:
        workspace_dir = Path(tmp) / "repo"
        shutil.copytree(repo_tree, workspace_dir, symlinks=True)
        limits = Limits(command_timeout_s=60, memory_mb=4096, max_processes=512)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            box = create_sandbox(
                sandbox,
                SandboxSpec(
                    workspace=workspace_dir, limits=limits, env={"HF_HUB_OFFLINE": "1"}, hidden=list(ANSWER_KEYS)
                ),
            )
            box.start()
        try:
            if sample.setup.strip():  # the task's inputs exist before the agent starts, as in ML-Bench
                (workspace_dir / sample.path / ".researchgym-setup.sh").write_text(sample.setup)
                box.run(
                    f"cd {shlex.quote(posixpath.join(box.workspace_path, sample.path))} && bash .researchgym-setup.sh "
                    "&& rm .researchgym-setup.sh",
                    timeout_s=300,
                )
            try:
                agent.solve(sample, Workspace(box, sample, log))
            except Exception as exc:  # an agent crash is still judged: without run.sh every check fails
                log.write("error", error=f"{type(exc).__name__}: {exc}")
        finally:
            box.close()
        script = _read_run_sh(workspace_dir / sample.path / "run.sh")
    # Judged on a fresh copy of the repository (setup, then run.sh), so nothing the agent ran or
    # left behind (its own outputs, edited scripts) can make it pass.
    if script is None:
        missing = Check(False, f"the agent left no run.sh in {sample.path}")
        judgment = Judgment(sample.key, missing, missing, missing)
    else:
        judgment = Judge(repo_tree, sandbox=sandbox, mode=judge_mode).judge(sample, "bash", script)
    log.write("judgment", **judgment.to_dict())
    return judgment, script


#: The largest run.sh read (an answer is a few lines; the judge needs no more).
MAX_RUN_SH = 1 << 20


def _read_run_sh(path: Path) -> str | None:
    """The agent's run.sh, read on the host from a folder the agent wrote: a regular file only,
    never through a link (a link to a host file put that file's text in the results) nor
    blocking on a FIFO; None otherwise, judged as no run.sh."""
    data = read_regular_file(path, MAX_RUN_SH)
    return None if data is None else data.decode("utf-8", "replace")


def run_agent_setting(
    samples: list[Sample],
    agent: RepoAgent,
    repos: Any,
    store: Any,
    *,
    run_id: str,
    model_name: str,
    out: Path | None = None,
    sandbox: str = "bwrap",
    on_result: Any = None,
) -> Any:
    """An episode per sample (skipping those already stored), judged and stored one by one."""
    from researchgym.mlbench.llm import summarize

    done = {r["sample"] for r in store.mlbench_rows(run_id) if r["setting"] == "agent" and r["model"] == model_name}
    for sample in samples:
        if sample.key in done:
            continue
        started = time.monotonic()
        cost_before = getattr(agent, "cost", 0.0)
        trajectory = out / "trajectories" / f"{sample.key.replace('#', '-')}.jsonl" if out else None
        judgment, script = play_agent_episode(
            agent,
            sample,
            repos.tree(sample),
            trajectory=trajectory,
            sandbox=sandbox,
            judge_mode=getattr(repos, "judge_mode", "strict"),
        )
        row = {
            "sample": sample.key,
            "repo": sample.repo_name,
            "setting": "agent",
            "model": model_name,
            "attempt": 0,
            "language": "bash",
            "code": script,
            "reply": str(trajectory or ""),
            "arguments_ok": judgment.arguments.passed,
            "type_ok": judgment.type.passed,
            "execution_ok": judgment.execution.passed,
            "passed": judgment.passed,
            "detail": {**judgment.to_dict(), "seconds": time.monotonic() - started},
            "cost": getattr(agent, "cost", 0.0) - cost_before,
        }
        store.record_mlbench(run_id, row)
        if on_result is not None:
            on_result(row)
    return summarize(store.mlbench_rows(run_id), setting="agent", model=model_name, k=1)
