"""What a fake prints: a line on stdout or stderr, and :class:`Failure`, the command's
failure (its text on stderr, exit 1, as with kind and kubectl)."""

from __future__ import annotations

import sys


class Failure(Exception):
    """The command fails: ``text`` goes to stderr and the exit code is 1, as with kind and kubectl."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def out(text: str = "") -> None:
    print(text, flush=True)


def err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
