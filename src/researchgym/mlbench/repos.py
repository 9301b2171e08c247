"""Repositories at a pinned version, materialised once into the cache.

A pin says where the source comes from: `pypi-sdist` (the source distribution of a package
version from the package index: the offline suite's repositories) or `git` (a clone checked
out at a commit: the hub dataset's GitHub repositories). ML-Bench cloned unpinned; here a git
pin without a commit is refused. The tree lands in `$RESEARCHGYM_CACHE/mlbench/repos/<name>-<ref>`
via a staging folder renamed into place, so an interrupted fetch leaves nothing half-made.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from researchgym.datasets import cache_root
from researchgym.mlbench.data import MLBenchError, suite_dir


class RepoPin(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    github: str = ""
    #: ML-Bench's number for the repository (its samples carry it as `github_id`).
    github_id: int | None = None
    source: Literal["pypi-sdist", "git"]
    package: str | None = None
    version: str | None = None
    #: Top folder inside the sdist (default `<package>-<version>`).
    root: str | None = None
    #: For git: the URL to clone (default `github`) and the commit to check out.
    url: str | None = None
    commit: str | None = None
    #: Optional SHA-256 of the sdist, checked besides the index's own hash.
    sha256: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> RepoPin:
        if self.source == "pypi-sdist" and not (self.package and self.version):
            raise ValueError("a pypi-sdist pin needs `package` and `version`")
        if self.source == "git" and not (self.url or self.github):
            raise ValueError("a git pin needs `url` or `github`")
        return self

    @property
    def ref(self) -> str:
        return (self.version or "") if self.source == "pypi-sdist" else (self.commit or "unpinned")[:12]


def load_pins(path: Path) -> dict[str, RepoPin]:
    try:
        entries = yaml.safe_load(path.read_text()) or []
    except (OSError, yaml.YAMLError) as exc:
        raise MLBenchError(f"{path}: cannot read the repository pins: {exc}") from exc
    pins = {}
    for index, entry in enumerate(entries):
        try:
            pin = RepoPin.model_validate(entry)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise MLBenchError(
                f"{path}: entry {index}: field '{'.'.join(map(str, first['loc']))}': {first['msg']}"
            ) from exc
        pins[pin.name] = pin
    return pins


def suite_pins(suite: str) -> dict[str, RepoPin]:
    return load_pins(suite_dir(suite) / "repos.yaml")


#: The paper's 14 repositories at the commits ML-Bench's own preparation script checks out.
PAPER_PINS = Path(__file__).parent / "paper_repos.yaml"


def _github_key(url: str) -> str:
    """A GitHub address compared without scheme, case, `.git` or trailing slash."""
    text = url.strip().lower().rstrip("/").removesuffix(".git")
    return text.split("github.com/", 1)[-1]


def pin_for(pins: dict[str, RepoPin], name: str, github: str = "", github_id: int | str = "") -> RepoPin | None:
    """The pin of a sample's repository: by its name, then its GitHub address, then ML-Bench's
    number for it, then its name in any case (the hub's samples say `LAVIS` and `github_id` 3;
    the pins file says `lavis`)."""
    if name in pins:
        return pins[name]
    if github:
        key = _github_key(github)
        for pin in pins.values():
            if pin.github and _github_key(pin.github) == key:
                return pin
    if str(github_id).strip().isdigit():
        for pin in pins.values():
            if pin.github_id == int(str(github_id)):
                return pin
    folded = {pin_name.lower(): pin for pin_name, pin in pins.items()}
    return folded.get(name.lower())


def repos_root() -> Path:
    return cache_root() / "mlbench" / "repos"


def materialize(pin: RepoPin, root: Path | None = None) -> Path:
    """The repository's tree in the cache, fetched on first use."""
    root = root or repos_root()
    target = root / f"{pin.name}-{pin.ref}"
    if target.is_dir():
        return target
    if pin.source == "git" and not pin.commit:
        raise MLBenchError(
            f"repository '{pin.name}' has no pinned commit: results would change with the "
            "repository; add `commit:` to its pin"
        )
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=root))
    try:
        tree = _fetch_sdist(pin, staging) if pin.source == "pypi-sdist" else _fetch_git(pin, staging)
        try:
            tree.rename(target)
        except OSError:
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise MLBenchError(f"{what} failed: " + " | ".join(tail))


def _index_url() -> str:
    return (os.environ.get("PIP_INDEX_URL") or "https://pypi.org/simple").rstrip("/")


def _download_sdist(pin: RepoPin, folder: Path) -> Path:
    """The sdist file of `package==version`, found in the package index's JSON listing (PEP 691)
    and checked against the index's SHA-256 (and the pin's, when it has one). `pip download`
    is not used: for packages with compiled parts it builds metadata, which needs their build
    tools."""
    name = re.sub(r"[-_.]+", "-", str(pin.package)).lower()
    request = urllib.request.Request(
        f"{_index_url()}/{name}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            listing = json.load(response)
    except (OSError, ValueError) as exc:
        raise MLBenchError(f"cannot list {pin.package} on the package index {_index_url()}: {exc}") from exc
    wanted = {
        f"{stem}-{pin.version}{ext}"
        for stem in {name, name.replace("-", "_"), str(pin.package)}
        for ext in (".tar.gz", ".zip")
    }
    entry = next((f for f in listing.get("files", []) if f.get("filename") in wanted), None)
    if entry is None:
        raise MLBenchError(f"the package index has no source distribution of {pin.package}=={pin.version}")
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / entry["filename"]
    digest = hashlib.sha256()
    with (
        urllib.request.urlopen(urllib.parse.urljoin(f"{_index_url()}/{name}/", entry["url"]), timeout=120) as response,
        archive.open("wb") as out,
    ):
        while chunk := response.read(1 << 20):
            digest.update(chunk)
            out.write(chunk)
    for expected in (entry.get("hashes", {}).get("sha256"), pin.sha256):
        if expected and digest.hexdigest() != expected:
            raise MLBenchError(f"{archive.name}: SHA-256 {digest.hexdigest()} does not match {expected}")
    return archive


def _fetch_sdist(pin: RepoPin, staging: Path) -> Path:
    archive = _download_sdist(pin, staging / "download")
    extracted = staging / "tree"
    if archive.name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(archive) as tar:
            tar.extractall(extracted, filter="data")
    elif archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(extracted)
    else:
        raise MLBenchError(f"{archive.name}: not a source archive this code can unpack")
    top = extracted / (pin.root or f"{pin.package}-{pin.version}")
    if not top.is_dir():
        found = [p.name for p in extracted.iterdir()]
        raise MLBenchError(f"{archive.name} has no top folder {top.name} (it has {found}); fix `root` in the pin")
    return top


def _fetch_git(pin: RepoPin, staging: Path) -> Path:
    tree = staging / "tree"
    _run(["git", "clone", "--quiet", pin.url or pin.github, str(tree)], f"cloning {pin.url or pin.github}")
    _run(
        ["git", "-C", str(tree), "checkout", "--quiet", "--detach", str(pin.commit)],
        f"checking out {pin.commit} of {pin.name}",
    )
    return tree
