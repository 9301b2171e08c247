"""Turning an agent's action into what the shell runs.

Block commands (`edit 3:5` ... `end_of_edit`) are written the way agents expect, with their
text on the following lines. The shell would run those lines as commands, so the block is
rewritten into a quoted heredoc that feeds the command. A block without its terminator is
refused outright rather than run line by line.
"""

from __future__ import annotations

import shlex
from functools import lru_cache

from researchgym.errors import ResearchGymError
from researchgym.tools.docs import command_docs


class ActionError(ResearchGymError):
    """The action cannot be run as written; the message tells the agent how to fix it."""


@lru_cache(maxsize=1)
def _block_commands() -> dict[str, str]:
    """name -> the line that ends its block, for every command whose docs name one."""
    return {doc.name: doc.end_name for doc in command_docs() if doc.end_name}


def _first_line(line: str, terminator: str) -> str:
    """The block command's first line with every word quoted: whatever follows the name goes
    to the command as arguments (which reports the ones it cannot use), never to the shell.
    A heredoc the agent wrote itself (`<< 'end_of_edit'`, as MLGym accepts) is dropped."""
    try:
        words = shlex.split(line, comments=False)
    except ValueError:  # an unbalanced quote: keep the words as they are, each quoted
        words = line.split()
    if words[-2:] == ["<<", terminator] or words[-2:] == ["<<-", terminator]:
        words = words[:-2]
    elif words and words[-1] in {f"<<{terminator}", f"<<-{terminator}"}:
        words = words[:-1]
    return " ".join(shlex.quote(word) for word in words)


def prepare_action(action: str) -> str:
    """Rewrite every block command in `action` into a heredoc; leave everything else alone.

    As in MLGym, a line is a block command when its first word is the command's name and a
    later line holds only the terminator (trailing spaces allowed): the lines in between are
    its text, whatever else the first line says, so they are never run as shell commands."""
    blocks = _block_commands()
    if not any(name in action for name in blocks):
        return action
    lines = action.split("\n")
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        words = line.split()
        terminator = blocks.get(words[0]) if words else None
        if terminator is not None:
            try:
                end = next(i for i in range(index + 1, len(lines)) if lines[i].rstrip() == terminator)
            except StopIteration:
                raise ActionError(
                    f"the {words[0]} block has no line `{terminator}` to end it, so nothing was run. "
                    f"Put the new lines after `{line.strip()}` and end with a line containing only `{terminator}`."
                ) from None
            # The variable tells the command an empty block is meant (bash feeds an empty heredoc
            # from /dev/null, which would otherwise look like a forgotten block).
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}RESEARCHGYM_BLOCK=1 {_first_line(line, terminator)} <<'{terminator}'")
            out.extend(lines[index + 1 : end])
            out.append(terminator)
            index = end + 1
            continue
        out.append(line)
        index += 1
    return "\n".join(out)
