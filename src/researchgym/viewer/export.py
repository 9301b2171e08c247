"""A self-contained copy of the viewer: the front end plus every answer the API would give, in
`static/data.js`, so `index.html` opens from disk (browsers refuse `fetch` on file:// pages,
but load scripts). ML-Bench judgments go in too: the summary, the list and every answer's record.
The bundle is strict JSON, as the server's answers are (a non-finite number becomes null)."""

from __future__ import annotations

import shutil
from pathlib import Path

from researchgym.strict_json import strict_dumps
from researchgym.viewer.data import RunData
from researchgym.viewer.server import STATIC, STATIC_FILES

BUNDLE_MARK = "<!-- bundle -->"


def export_bundle(run_dir: str | Path, out_dir: str | Path) -> Path:
    data = RunData(run_dir)
    out = Path(out_dir)
    (out / "static").mkdir(parents=True, exist_ok=True)
    overview = data.overview()
    episodes, observations = {}, {}
    for summary in overview["episodes"]:
        if not summary["has_trajectory"]:
            continue
        episode = data.episode(summary["key"])
        episodes[summary["key"]] = episode
        cut = {
            step["step"]: data.observation(summary["key"], step["step"])
            for step in episode["steps"]
            if step["observation_chars"] > len(step["observation"])
        }
        if cut:
            observations[summary["key"]] = cut
    answers = data.mlbench_answers()
    mlbench = {"summary": data.mlbench_summary(), "answers": answers, "records": data.mlbench_records()}
    bundle = {"overview": overview, "episodes": episodes, "observations": observations, "mlbench": mlbench}
    text = strict_dumps(bundle, default=str).replace("</", "<\\/")  # never ends the script early
    (out / "static" / "data.js").write_text(f"window.RG_BUNDLE = {text};\n", encoding="utf-8")
    for name in STATIC_FILES:
        if name != "index.html":
            shutil.copyfile(STATIC / name, out / "static" / name)
    index = (STATIC / "index.html").read_text(encoding="utf-8")
    (out / "index.html").write_text(
        index.replace(BUNDLE_MARK, '<script src="static/data.js"></script>'), encoding="utf-8"
    )
    return out / "index.html"
