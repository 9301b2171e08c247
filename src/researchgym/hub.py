"""Fetching task data from the Hugging Face hub (and plain URLs), for dataset prepare scripts.

Prepare scripts run once, on the host, and write into researchgym's dataset cache; the sandbox
never needs the network. Three things this module adds over calling `datasets` directly:

* **Fail fast offline.** When the hub cannot be reached, the hub libraries are switched to
  offline mode before they are imported, so a dataset already in their cache still loads, and
  a missing one raises `DatasetUnavailable` at once with a message naming the dataset and how
  to pre-fetch it, instead of retrying for minutes and ending in a stack trace.
* **A local mirror.** `RESEARCHGYM_HUB_MIRROR=/folder` makes every fetch read
  `/folder/<repo id>/...` (laid out exactly like the hub repository, README configs and all)
  instead of the network. The tests use it with tiny fixtures written by `datasets`; an
  air-gapped cluster can use it with a real copy. Everything after the fetch is the same code.
* **One place for the message**, so every hub task says the same thing.
"""

from __future__ import annotations

import os
import shutil
import socket
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from researchgym.extras import install_hint

MIRROR_ENV = "RESEARCHGYM_HUB_MIRROR"
#: Set by researchgym.datasets while a prepare script runs, so messages can name the task.
TASK_ENV = "RESEARCHGYM_PREPARING_TASK"
PROBE_TIMEOUT_S = 5.0


class DatasetUnavailable(Exception):
    """The data cannot be fetched here: not cached and no network. The message says what to do."""


def mirror_root() -> Path | None:
    value = os.environ.get(MIRROR_ENV)
    return Path(value).expanduser() if value else None


def _endpoint_host() -> str:
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    return urllib.parse.urlparse(endpoint).hostname or "huggingface.co"


def reachable(host: str, port: int = 443, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to `host` opens. With a proxy configured we cannot tell, so yes."""
    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _go_offline_if_unreachable() -> bool:
    """Put the hub libraries in offline mode when the hub is unreachable; True if offline.

    Must run before `datasets`/`huggingface_hub` are imported: both read the flag at import.
    """
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1":
        return True
    if reachable(_endpoint_host()):
        return False
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    return True


def unavailable_message(what: str, detail: str = "") -> str:
    task = os.environ.get(TASK_ENV) or "<task>"
    cache = os.environ.get("HF_HOME") or str(Path.home() / ".cache" / "huggingface")
    reason = f" ({detail})" if detail else ""
    return (
        f"{what} is not in the local cache ({cache}) and {_endpoint_host()} cannot be reached{reason}. "
        f"Pre-fetch it on a machine with network access with `researchgym prepare {task}` and copy "
        f"the researchgym cache folder (RESEARCHGYM_CACHE, default ~/.cache/researchgym) here, or "
        f"point {MIRROR_ENV} at a local copy of the hub repository."
    )


def _import_datasets() -> Any:
    try:
        import datasets
    except ImportError as exc:
        raise DatasetUnavailable(
            f"the Hugging Face `datasets` package is not installed: {install_hint('hub')}"
        ) from exc
    return datasets


def load_hub_dataset(repo_id: str, config: str | None = None, *, split: str | None = None) -> Any:
    """`datasets.load_dataset(repo_id, config, split=split)`, from the mirror when one is set."""
    mirror = mirror_root()
    if mirror is not None:
        local = mirror / repo_id
        if not local.is_dir():
            raise DatasetUnavailable(f"{MIRROR_ENV}={mirror} has no folder {repo_id}/ for the dataset {repo_id}")
        return _import_datasets().load_dataset(str(local), config, split=split)
    offline = _go_offline_if_unreachable()
    datasets = _import_datasets()
    try:
        return datasets.load_dataset(repo_id, config, split=split)
    except Exception as exc:  # the hub libraries raise many types when the data is not there
        if offline:
            raise DatasetUnavailable(
                unavailable_message(f"the Hugging Face dataset {repo_id}", type(exc).__name__)
            ) from exc
        raise


def hub_file(repo_id: str, filename: str, *, repo_type: str = "dataset") -> Path:
    """The local path of one file of a hub repository (downloaded into the hub cache)."""
    mirror = mirror_root()
    if mirror is not None:
        local = mirror / repo_id / filename
        if not local.is_file():
            raise DatasetUnavailable(f"{MIRROR_ENV}={mirror} has no file {repo_id}/{filename}")
        return local
    offline = _go_offline_if_unreachable()
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as exc:
        raise DatasetUnavailable(f"the `huggingface_hub` package is not installed: {install_hint('hub')}") from exc
    try:
        return Path(hf_hub_download(repo_id, filename, repo_type=repo_type))
    except Exception as exc:
        if offline:
            raise DatasetUnavailable(
                unavailable_message(f"{filename} of the Hugging Face {repo_type} {repo_id}", type(exc).__name__)
            ) from exc
        raise


def copy_hub_files(repo_id: str, filenames: list[str], target: Path, *, repo_type: str = "model") -> None:
    """Copy files of a hub repository (e.g. a model's config, weights and vocabulary) to `target`."""
    target.mkdir(parents=True, exist_ok=True)
    for name in filenames:
        shutil.copyfile(hub_file(repo_id, name, repo_type=repo_type), target / name)


def fetch_url(url: str, target: Path) -> Path:
    """Download `url` to `target`; with a mirror, copy `<mirror>/urls/<file name>` instead."""
    name = Path(urllib.parse.urlparse(url).path).name
    mirror = mirror_root()
    target.parent.mkdir(parents=True, exist_ok=True)
    if mirror is not None:
        local = mirror / "urls" / name
        if not local.is_file():
            raise DatasetUnavailable(f"{MIRROR_ENV}={mirror} has no file urls/{name} (for {url})")
        shutil.copyfile(local, target)
        return target
    host = urllib.parse.urlparse(url).hostname or url
    if not reachable(host):
        raise DatasetUnavailable(
            f"{url} cannot be downloaded: {host} cannot be reached. Pre-fetch it on a machine with network "
            f"access with `researchgym prepare {os.environ.get(TASK_ENV) or '<task>'}`, or put the file at "
            f"<mirror>/urls/{name} and set {MIRROR_ENV}=<mirror>."
        )
    partial = target.with_name(target.name + ".partial")
    with urllib.request.urlopen(url, timeout=60) as response, partial.open("wb") as out:
        shutil.copyfileobj(response, out, length=1 << 20)
    partial.rename(target)
    return target
