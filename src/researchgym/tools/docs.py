"""Command documentation, read from the header each command carries in its own file.

A header is a YAML block between two `# ---` comment lines near the top of the executable
(name, signature, docstring, arguments, and `end_name` for block commands). The list an
agent is shown is generated from these headers, so a command and its documentation cannot
drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

TOOLS_BIN = Path(__file__).resolve().parent / "bin"
TOOLS_LIB = Path(__file__).resolve().parent / "lib"


@dataclass(frozen=True)
class Argument:
    name: str
    type: str
    description: str
    required: bool


@dataclass(frozen=True)
class CommandDoc:
    name: str
    signature: str
    docstring: str
    arguments: tuple[Argument, ...] = field(default_factory=tuple)
    #: For block commands (edit, insert): the line that ends the block.
    end_name: str | None = None
    #: The tool group a run must enable for the command to work (memory, literature), if any.
    requires: str | None = None


def parse_header(path: Path) -> CommandDoc:
    lines = path.read_text(encoding="utf-8").splitlines()
    try:
        start = lines.index("# ---")
        end = lines.index("# ---", start + 1)
    except ValueError:
        raise ValueError(f"{path}: no documentation header (a YAML block between two '# ---' lines)") from None
    block = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in lines[start + 1 : end])
    data = yaml.safe_load(block) or {}
    missing = [key for key in ("name", "signature", "docstring") if key not in data]
    if missing:
        raise ValueError(f"{path}: documentation header lacks {', '.join(missing)}")
    if data["name"] != path.name:
        raise ValueError(f"{path}: header names '{data['name']}', but the file is '{path.name}'")
    arguments = tuple(
        Argument(
            name, str(spec.get("type", "string")), str(spec.get("description", "")), bool(spec.get("required", False))
        )
        for name, spec in (data.get("arguments") or {}).items()
    )
    return CommandDoc(
        data["name"],
        str(data["signature"]).strip(),
        " ".join(str(data["docstring"]).split()),
        arguments,
        data.get("end_name"),
        data.get("requires"),
    )


@lru_cache(maxsize=1)
def command_docs() -> tuple[CommandDoc, ...]:
    """Every command shipped in `bin/`, in a stable order (viewing, editing, search, scoring)."""
    order = [
        "open",
        "goto",
        "scroll_up",
        "scroll_down",
        "create",
        "edit",
        "insert",
        "search_dir",
        "search_file",
        "find_file",
        "memory_write",
        "memory_read",
        "literature_search",
        "parse_pdf",
        "validate",
        "submit",
    ]
    docs = [parse_header(path) for path in TOOLS_BIN.iterdir() if path.is_file()]
    return tuple(sorted(docs, key=lambda d: (order.index(d.name) if d.name in order else len(order), d.name)))


def available_commands(groups: list[str] | tuple[str, ...] | None = ()) -> tuple[CommandDoc, ...]:
    """The commands an agent can use when the run enables these tool groups; None means all."""
    if groups is None:
        return command_docs()
    return tuple(doc for doc in command_docs() if doc.requires is None or doc.requires in groups)


def render_command_docs(docs: tuple[CommandDoc, ...] | None = None) -> str:
    """The command list for an agent's prompt: signature, description, then each argument."""
    parts = []
    for doc in available_commands() if docs is None else docs:
        lines = [doc.signature, f"  {doc.docstring}"]
        for arg in doc.arguments:
            need = "required" if arg.required else "optional"
            lines.append(f"  - {arg.name} ({arg.type}, {need}): {arg.description}")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)
