"""Turning an agent's action into what the shell runs.

Block commands (`edit 3:5` ... `end_of_edit`) are written the way agents expect, with their
text on the following lines. The shell would run those lines as commands, so the block is
rewritten into a quoted heredoc that feeds the command. A block without its terminator is
refused outright rather than run line by line.
"""

from __future__ import annotations

import re
from functools import lru_cache

from researchgym.errors import ResearchGymError
from researchgym.tools.docs import command_docs


class ActionError(ResearchGymError):
    """The action cannot be run as written; the message tells the agent how to fix it."""


@lru_cache(maxsize=1)
def _block_commands() -> dict[str, tuple[re.Pattern[str], str]]:
    r"""name -> (pattern of the command's first line, terminator), from the signatures:
    `edit <start_line>:<end_line>` becomes `edit \S+:\S+` with nothing else on the line."""
    found = {}
    for doc in command_docs():
        if doc.end_name:
            first = doc.signature.splitlines()[0]
            pattern = r"\s*" + r"\s+".join(
                re.sub(r"<[^>]+>", r"\\S+", re.escape(word).replace(r"\<", "<").replace(r"\>", ">"))
                for word in first.split()
            ) + r"\s*"
            found[doc.name] = (re.compile(pattern), doc.end_name)
    return found


def prepare_action(action: str) -> str:
    """Rewrite every block command in `action` into a heredoc; leave everything else alone."""
    blocks = _block_commands()
    if not any(name in action for name in blocks):
        return action
    lines = action.split("\n")
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        words = line.split()
        block = blocks.get(words[0]) if words else None
        if block is not None and block[0].fullmatch(line):
            terminator = block[1]
            try:
                end = next(i for i in range(index + 1, len(lines)) if lines[i].rstrip("\r") == terminator)
            except StopIteration:
                raise ActionError(
                    f"the {words[0]} block has no line `{terminator}` to end it, so nothing was run. "
                    f"Put the new lines after `{line.strip()}` and end with a line containing only `{terminator}`."
                ) from None
            # The variable tells the command an empty block is meant (bash feeds an empty heredoc
            # from /dev/null, which would otherwise look like a forgotten block).
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}RESEARCHGYM_BLOCK=1 {line.strip()} <<'{terminator}'")
            out.extend(lines[index + 1 : end])
            out.append(terminator)
            index = end + 1
            continue
        out.append(line)
        index += 1
    return "\n".join(out)
