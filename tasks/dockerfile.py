"""Just enough Dockerfile parsing: instructions with their line numbers, and base images.

Used to infer dependencies from ``FROM`` lines, to check base images in preflight, and to
map a failed build step back to the Dockerfile line that broke.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tasks.references import repository


class DockerfileSyntaxError(ValueError):
    """The Dockerfile cannot be read as a sequence of instructions."""


@dataclass(frozen=True)
class Instruction:
    """One instruction; ``line`` is the 1-based line it starts on."""

    line: int
    keyword: str  # upper case: FROM, RUN, COPY, ...
    arguments: str  # the text after the keyword, continuation lines joined

    @property
    def text(self) -> str:
        return f"{self.keyword} {self.arguments}".strip()


@dataclass(frozen=True)
class BaseRef:
    """A ``FROM`` line's image, with build args applied."""

    line: int
    ref: str  # resolved reference, e.g. "python:3.12-slim"
    raw: str  # as written, e.g. "${BASE_IMAGE}"
    stage_alias: str | None  # "AS builder"
    internal: bool  # names an earlier stage of the same Dockerfile, or scratch

    def configured_name(self, names: Sequence[str]) -> str | None:
        """The configured image this reference names (any tag), or None."""
        if self.internal:
            return None
        name = repository(self.ref)
        return name if name in names else None


@dataclass(frozen=True)
class Dockerfile:
    """A parsed Dockerfile."""

    path: Path | None
    instructions: tuple[Instruction, ...]

    @classmethod
    def parse(cls, text: str, path: Path | None = None) -> Dockerfile:
        # A UTF-8 byte order mark at the start is dropped, as Docker's parser drops it.
        return cls(path=path, instructions=tuple(_instructions(text.removeprefix("\ufeff"))))

    def global_args(self, build_args: Mapping[str, str] | None = None) -> dict[str, str | None]:
        """``ARG`` declarations before the first ``FROM``: their values with ``build_args``
        applied (a default may use earlier ARGs, as in ``ARG BASE=${REGISTRY}/base``)."""
        build_args = build_args or {}
        args: dict[str, str | None] = {}
        for instruction in self.instructions:
            if instruction.keyword == "FROM":
                break
            if instruction.keyword == "ARG":
                for token in shlex.split(instruction.arguments):
                    name, sep, default = token.partition("=")
                    if name in build_args:
                        args[name] = build_args[name]
                    else:
                        args[name] = _substitute(default, args) if sep else None
        return args

    def base_refs(self, build_args: Mapping[str, str]) -> list[BaseRef]:
        """Every ``FROM`` line's image, resolved with the global ARG defaults and ``build_args``."""
        values = self.global_args(build_args)
        refs: list[BaseRef] = []
        aliases: set[str] = set()
        for instruction in self.instructions:
            if instruction.keyword != "FROM":
                continue
            tokens = [t for t in instruction.arguments.split() if not t.startswith("--")]
            if not tokens:
                raise DockerfileSyntaxError(f"line {instruction.line}: FROM without an image")
            raw = tokens[0]
            alias = tokens[2] if len(tokens) >= 3 and tokens[1].lower() == "as" else None
            ref = _substitute(raw, values)
            refs.append(
                BaseRef(
                    line=instruction.line,
                    ref=ref,
                    raw=raw,
                    stage_alias=alias,
                    internal=ref == "scratch" or ref.lower() in aliases,
                )
            )
            if alias:
                aliases.add(alias.lower())
        return refs

    def step(self, number: int) -> Instruction | None:
        """The instruction the legacy builder calls ``Step <number>/N`` (1-based)."""
        if 1 <= number <= len(self.instructions):
            return self.instructions[number - 1]
        return None

    def find(self, text: str) -> Instruction | None:
        """The instruction whose text matches ``text`` (whitespace-insensitive)."""
        wanted = " ".join(text.split())
        for instruction in self.instructions:
            if " ".join(instruction.text.split()) == wanted:
                return instruction
        return None

    def at_line(self, line: int) -> Instruction | None:
        """The instruction that covers ``line``."""
        covering = None
        for instruction in self.instructions:
            if instruction.line <= line:
                covering = instruction
        return covering


_DIRECTIVE = re.compile(r"^#\s*(\w+)\s*=\s*(\S+)\s*$")


def _instructions(text: str) -> list[Instruction]:
    lines = text.splitlines()
    escape = "\\"
    # Parser directives (``# escape=` ``) only at the very top.
    for line in lines:
        match = _DIRECTIVE.match(line)
        if not match:
            break
        if match.group(1).lower() == "escape":
            escape = match.group(2)
    result: list[Instruction] = []
    start: int | None = None
    parts: list[str] = []
    for number, line in enumerate(lines, start=1):
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
        start, parts = None, []
    if start is not None:
        result.append(_make(start, "".join(parts)))
    return result


def _make(line: int, text: str) -> Instruction:
    """One instruction; whitespace runs are collapsed (the text is for matching and messages)."""
    keyword, _, arguments = " ".join(text.split()).partition(" ")
    if not re.fullmatch(r"[A-Za-z]+", keyword):
        raise DockerfileSyntaxError(f"line {line}: {keyword!r} is not an instruction")
    return Instruction(line=line, keyword=keyword.upper(), arguments=arguments.strip())


_REFERENCE = re.compile(r"\$\{(?P<name>\w+)(?::(?P<op>[-+])(?P<word>[^}]*))?\}|\$(?P<bare>\w+)")


def _substitute(text: str, values: Mapping[str, str | None]) -> str:
    def expand(match: re.Match[str]) -> str:
        name = match.group("name") or match.group("bare")
        value = values.get(name)
        op = match.group("op")
        if op == "-":
            return value if value else match.group("word")
        if op == "+":
            return match.group("word") if value else ""
        return value or ""

    return _REFERENCE.sub(expand, text)
