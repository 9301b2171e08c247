"""The code in a model's reply.

Rule (documented for users): every fenced block (```lang ... ```) is found; the answer is the
first block whose language tag is the most preferred one present, in the order given (for a
bash task: bash, sh, shell, console, then untagged, then python; for a Python task: python, py,
then untagged, then the shell tags). With no fenced block at all, the whole reply (stripped) is
the answer, tagged "". `$ ` prompts at the start of shell lines are removed.
"""

from __future__ import annotations

import re

FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)```", re.DOTALL)
SHELL_TAGS = ("bash", "sh", "shell", "console", "zsh")
PYTHON_TAGS = ("python", "py", "python3")


def preference(bash_task: bool) -> tuple[str, ...]:
    return (*SHELL_TAGS, "", *PYTHON_TAGS) if bash_task else (*PYTHON_TAGS, "", *SHELL_TAGS)


def extract_code(reply: str, *, bash_task: bool = True) -> tuple[str, str]:
    """(language tag, code); the tag is lower-cased, "" for an untagged block or a bare reply."""
    blocks = [(m.group(1).lower(), m.group(2)) for m in FENCE.finditer(reply)]
    if not blocks:
        return "", _clean(reply.strip(), "")
    for tag in preference(bash_task):
        for language, code in blocks:
            if language == tag:
                return language, _clean(code.strip(), language)
    language, code = blocks[0]
    return language, _clean(code.strip(), language)


def _clean(code: str, language: str) -> str:
    if language in PYTHON_TAGS:
        return code
    return "\n".join(line[2:] if line.startswith("$ ") else line for line in code.splitlines())
