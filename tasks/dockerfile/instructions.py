"""A Dockerfile's text as instructions, each with the line it starts on.

What it follows of Docker's parser: parser directives at the top (``# syntax=``,
``# escape=``), line continuations (comment and empty lines inside one dropped), heredocs
(``RUN <<EOF`` … ``EOF``: the body belongs to the instruction, it is not parsed as
instructions).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace


class DockerfileSyntaxError(ValueError):
    """The Dockerfile cannot be read as a sequence of instructions."""


@dataclass(frozen=True)
class Instruction:
    """One instruction; ``line`` is the 1-based line it starts on."""

    line: int
    keyword: str  # upper case: FROM, RUN, COPY, ...
    arguments: str  # the text after the keyword, continuation lines joined
    heredocs: tuple[str, ...] = ()  # bodies of its ``<<WORD`` documents, in order

    def flags(self) -> dict[str, list[str]]:
        """The leading ``--name=value`` flags (``--mount`` may repeat), values as written."""
        flags: dict[str, list[str]] = {}
        for word in self.arguments.split():
            if not word.startswith("--"):
                break
            name, _, value = word[2:].partition("=")
            flags.setdefault(name.lower(), []).append(value)
        return flags

    @property
    def text(self) -> str:
        return f"{self.keyword} {self.arguments}".strip()


def from_flags(instruction: Instruction) -> list[tuple[str, str]]:
    """``(image as written, what)`` of ``COPY --from=…`` and ``RUN --mount=…,from=…``."""
    flags = instruction.flags()
    if instruction.keyword in ("COPY", "ADD"):
        return [(value, f"{instruction.keyword} --from") for value in flags.get("from", []) if value]
    if instruction.keyword == "RUN":
        found = []
        for mount in flags.get("mount", []):
            for option in mount.split(","):
                key, _, value = option.partition("=")
                if key.strip().lower() == "from" and value:
                    found.append((value.strip(), "RUN --mount=from"))
        return found
    return []


_DIRECTIVE = re.compile(r"^#\s*(\w+)\s*=\s*(\S+)\s*$")
HEREDOC = re.compile(r"<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")


def read_directives(text: str) -> dict[str, tuple[int, str]]:
    """Parser directives: ``# name=value`` lines at the very top, before any other line."""
    found: dict[str, tuple[int, str]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        match = _DIRECTIVE.match(line)
        if not match or match.group(1).lower() in found:
            break
        found[match.group(1).lower()] = (number, match.group(2))
    return found


def read_instructions(text: str, escape: str = "\\") -> list[Instruction]:
    lines = text.splitlines()
    result: list[Instruction] = []
    start: int | None = None
    parts: list[str] = []
    heredoc_ends: list[tuple[str, bool]] = []  # (word, strip leading tabs) still to read
    bodies: list[str] = []
    body: list[str] = []
    for number, line in enumerate(lines, start=1):
        if heredoc_ends:  # inside a heredoc: lines belong to it, up to its terminator
            word, strip_tabs = heredoc_ends[0]
            if (line.lstrip("\t") if strip_tabs else line) == word:
                bodies.append("\n".join(body) + "\n")
                body = []
                heredoc_ends.pop(0)
                if not heredoc_ends:
                    result[-1] = replace(result[-1], heredocs=tuple(bodies))
            else:
                body.append(line.lstrip("\t") if strip_tabs else line)
            continue
        stripped = line.strip()
        if start is None:
            if not stripped or stripped.startswith("#"):
                continue
            start = number
        elif not stripped or stripped.startswith("#"):
            continue  # Docker drops comment and empty lines inside a continued instruction
        if stripped.endswith(escape):
            parts.append(line.rstrip()[: -len(escape)])  # joined as written, like Docker
            continue
        parts.append(line)
        result.append(_make(start, "".join(parts)))
        if result[-1].keyword in ("RUN", "COPY", "ADD"):
            heredoc_ends = [(m.group(3), m.group(1) == "-") for m in HEREDOC.finditer(result[-1].arguments)]
            bodies = []
        start, parts = None, []
    if start is not None:
        result.append(_make(start, "".join(parts)))
    if heredoc_ends:
        raise DockerfileSyntaxError(
            f"line {result[-1].line}: heredoc {heredoc_ends[0][0]!r} is not terminated"
        )
    return result


def _make(line: int, text: str) -> Instruction:
    """One instruction; whitespace runs are collapsed (the text is for matching and messages)."""
    keyword, _, arguments = " ".join(text.split()).partition(" ")
    if not re.fullmatch(r"[A-Za-z]+", keyword):
        raise DockerfileSyntaxError(f"line {line}: {keyword!r} is not an instruction")
    return Instruction(line=line, keyword=keyword.upper(), arguments=arguments.strip())
