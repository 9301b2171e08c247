"""The one hint for installing a package extra, so every message names a command that works.

researchgym is installed from its clone, not from a package index, so `pip install
'researchgym[tabular]'` fails; `make install EXTRAS=tabular` works, and also installs the pinned CPU torch
first where an extra needs torch (an unpinned one pulls a multi-GB CUDA build).
"""

from __future__ import annotations

import importlib.metadata
import tomllib
from functools import cache
from pathlib import Path

#: The clone's pyproject.toml (absent when the package is installed from a wheel).
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


@cache
def known_extras() -> frozenset[str]:
    """The extras the installed package declares, plus the clone's pyproject.toml, so an extra
    added there since the last install is known too. Empty when neither can be read."""
    names: set[str] = set()
    try:
        names.update(importlib.metadata.metadata("researchgym").get_all("Provides-Extra") or [])
    except importlib.metadata.PackageNotFoundError:
        pass
    try:
        with PYPROJECT.open("rb") as file:
            names.update(tomllib.load(file)["project"]["optional-dependencies"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        pass
    return frozenset(names)


def is_extra(name: str) -> bool:
    """Whether `name` is one of the package's extras (anything is, when they cannot be read)."""
    known = known_extras()
    return not known or name in known


def install_hint(*extras: str) -> str:
    """The command, run in the clone, that installs these extras. Plain text: callers that print
    through rich must not let it read `[tabular]` as markup."""
    if not extras:
        raise ValueError("install_hint needs at least one extra")
    unknown = [name for name in extras if not is_extra(name)]
    if unknown:
        raise ValueError(
            f"no extra named {', '.join(unknown)} in pyproject.toml's [project.optional-dependencies]; "
            f"known: {', '.join(sorted(known_extras()))}"
        )
    names = ",".join(extras)
    return f"make install EXTRAS={names} in the researchgym clone (or .venv/bin/pip install -e '.[{names}]' there)"


def missing_requirements_problem(missing: list[str]) -> str:
    """What a task whose `requirements` are not importable needs, with the command to install them:
    a name that is no extra was checked as a Python module, which no extra provides."""
    extras = [name for name in missing if is_extra(name)]
    modules = [name for name in missing if not is_extra(name)]
    needs = [f"the extra(s) {','.join(extras)}: {install_hint(*extras)}"] if extras else []
    if modules:
        needs.append(f"the Python module(s) {', '.join(modules)}, which no researchgym extra provides")
    return "needs " + "; and ".join(needs)
