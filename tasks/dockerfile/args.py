"""``ARG`` words and ``${VAR}`` substitution as Docker does them, and BuildKit's automatic
platform args.

``ARG`` words follow Docker's quoting (``ARG X="a b"``, ``ARG X=it\\'s``; an unmatched quote
is an error, as in Docker); a reference is ``$X``, ``${X}``, ``${X:-default}`` or
``${X:+alternative}``; BuildKit gives the platform args (:data:`PLATFORM_ARGS`) their values
without an ``ARG``.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Mapping

from .instructions import DockerfileSyntaxError

PLATFORM_ARGS = (
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
)


def platform_args(target: str, build: str | None = None) -> dict[str, str]:
    """BuildKit's automatic args for building ``target`` (``os/arch[/variant]``) on ``build``
    (default: the same): ``TARGETARCH=amd64`` and so on. ``TARGETVARIANT`` is empty for a
    platform without a variant, as in BuildKit."""
    values: dict[str, str] = {}
    for prefix, platform in (("TARGET", target), ("BUILD", build or target)):
        os_name, _, rest = platform.partition("/")
        arch, _, variant = rest.partition("/")
        values |= {
            f"{prefix}PLATFORM": platform,
            f"{prefix}OS": os_name,
            f"{prefix}ARCH": arch,
            f"{prefix}VARIANT": variant,
        }
    return values


def variable_names(text: str) -> list[str]:
    """Names of the variables ``text`` refers to (``$X``, ``${X}``, ``${X:-y}``)."""
    return [m.group("name") or m.group("bare") for m in _REFERENCE.finditer(text)]


def arg_words(
    text: str, values: Mapping[str, str | None] | None, line: int, *, raw: bool = False
) -> list[str]:
    """``text`` split into words as Docker's shell-word processing does for ``ARG``: quotes
    removed (single quotes literal; in double quotes ``\\`` escapes ``"``, ``\\`` and ``$``),
    a backslash escaping the next character, ``$X`` expanded from ``values`` (not expanded,
    kept as written, when ``values`` is None). An unmatched quote is an error, as in Docker.
    ``raw``: the words as written (quotes kept), split where Docker splits them."""
    words: list[str] = []
    current: list[str] = []
    in_word = False
    start = 0
    i = 0

    def fail(quote: str) -> typing.NoReturn:
        word = text[start:].split(" ")[0]
        raise DockerfileSyntaxError(
            f'line {line}: failed to process "{word}": unexpected end of statement '
            f"while looking for matching {quote}"
        )

    def variable(at: int) -> int:
        match = _REFERENCE.match(text, at)
        if values is None or not match:
            current.append(match.group(0) if match else "$")
            return at + (len(match.group(0)) if match else 1)
        current.append(substitute(match.group(0), values))
        return match.end()

    while i < len(text):
        char = text[i]
        if char.isspace():
            if in_word:
                words.append(text[start:i] if raw else "".join(current))
                current, in_word = [], False
            i += 1
            continue
        if not in_word:
            in_word, start = True, i
        if char == "\\":
            current.append(text[i + 1] if i + 1 < len(text) else char)
            i += 2
        elif char == "'":
            end = text.find("'", i + 1)
            if end < 0:
                fail("single-quote")
            current.append(text[i + 1 : end])
            i = end + 1
        elif char == '"':
            i += 1
            while True:
                if i >= len(text):
                    fail("double-quote")
                char = text[i]
                if char == '"':
                    i += 1
                    break
                if char == "\\" and i + 1 < len(text) and text[i + 1] in '"\\$':
                    current.append(text[i + 1])
                    i += 2
                elif char == "$":
                    i = variable(i)
                else:
                    current.append(char)
                    i += 1
        elif char == "$":
            i = variable(i)
        else:
            current.append(char)
            i += 1
    if in_word:
        words.append(text[start:] if raw else "".join(current))
    return words


def expand_words(text: str, values: Mapping[str, str | None], line: int) -> str:
    """One ``ARG`` default, quotes removed and variables expanded."""
    return " ".join(arg_words(text, values, line)) if text else ""


_REFERENCE = re.compile(r"\$\{(?P<name>\w+)(?::(?P<op>[-+])(?P<word>[^}]*))?\}|\$(?P<bare>\w+)")


def substitute(text: str, values: Mapping[str, str | None]) -> str:
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


def unset_args(text: str, values: Mapping[str, str | None]) -> tuple[str, ...]:
    """The variables ``text`` uses without a fallback that have no value (``None`` or absent)."""
    names: list[str] = []
    for match in _REFERENCE.finditer(text):
        name = match.group("name") or match.group("bare")
        if match.group("op") or values.get(name) is not None or name in PLATFORM_ARGS:
            continue
        if name not in names:
            names.append(name)
    return tuple(names)
