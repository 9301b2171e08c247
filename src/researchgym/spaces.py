"""A text space honest about shell observations: any `str` up to a length.

Gymnasium's `Text` defaults to an alphanumeric charset, so a real shell observation (with
spaces, newlines and unicode) would fail `check_env`. `sample()` draws harmless printable
commands, so random-action checks never run anything destructive.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.spaces import Text

_SAFE_COMMANDS = ("echo {word}", "pwd", "ls", "printf '%s\\n' {word}", "true", "echo $(( {n} + 1 ))")


class ShellText(Text):
    def __init__(self, max_length: int = 1_000_000, seed: int | np.random.Generator | None = None) -> None:
        super().__init__(max_length=max_length, min_length=0, seed=seed)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and len(x) <= self.max_length

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        template = _SAFE_COMMANDS[int(self.np_random.integers(len(_SAFE_COMMANDS)))]
        letters = "abcdefghijklmnopqrstuvwxyz"
        word = "".join(letters[i] for i in self.np_random.integers(0, 26, size=6))
        return template.format(word=word, n=int(self.np_random.integers(1000)))

    def __repr__(self) -> str:
        return f"ShellText(max_length={self.max_length})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ShellText) and other.max_length == self.max_length
