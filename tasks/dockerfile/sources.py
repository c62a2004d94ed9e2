"""What of the build context a Dockerfile takes: the ``COPY``/``ADD`` sources of the stages a
target needs, as context-relative paths or Go ``filepath.Match`` globs — or the whole
context, with the reason, where that cannot be read for certain."""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .args import substitute
from .instructions import HEREDOC, Instruction, from_flags

if TYPE_CHECKING:
    from .model import Dockerfile


def context_sources(
    dockerfile: Dockerfile, build_args: Mapping[str, str] | None = None, target: str | None = None
) -> ContextSources:
    """What of the build context the image built to ``target`` (default: the last stage)
    takes: the ``COPY``/``ADD`` sources of that stage and of the stages it builds on
    (``FROM <stage>``, ``COPY --from=<stage>``, ``RUN --mount=from=<stage>``), normalised
    to context-relative paths or Go ``filepath.Match`` globs.

    The whole context (``patterns`` None, with the ``reason``) whenever that cannot be
    read for certain: a source that is the context itself (``.``, ``./``, ``/``), made
    from a variable, quoted or escaped, leaving the context (``..``); a ``RUN --mount``
    of type bind without ``from`` (its default source is the context); a ``# syntax=``
    frontend other than Docker's own. Not context sources: ``COPY --from``, ``ADD`` of a
    URL or git address, heredocs (``COPY <<EOF``).
    """
    syntax = dockerfile.directives.get("syntax")
    if syntax is not None and not _DOCKERFILE_FRONTEND.match(syntax[1]):
        return _whole(syntax[0], f"# syntax={syntax[1]}", "a frontend of its own")
    stages = _needed_stages(dockerfile, build_args or {}, target)
    patterns: list[str] = []
    for instruction in (i for stage in stages for i in stage):
        if instruction.keyword == "RUN":
            for mount in instruction.flags().get("mount", []):
                options = dict(_mount_option(option) for option in mount.split(",") if option)
                if options.get("type", "bind") == "bind" and not options.get("from"):
                    return _whole(instruction.line, f"RUN --mount={mount}", "a bind mount of the context")
        if instruction.keyword not in ("COPY", "ADD"):
            continue
        flags = instruction.flags()
        if "from" in flags:
            if not all(flags["from"]):
                return _whole(instruction.line, instruction.text, "an empty --from")
            continue
        sources = copy_sources(instruction)
        if sources is None:
            return _whole(instruction.line, instruction.text, "sources that cannot be read for certain")
        for source in sources:
            if instruction.keyword == "ADD" and _REMOTE.match(source):
                continue
            pattern = _context_pattern(source)
            if pattern is None:
                return _whole(instruction.line, instruction.text, f"the source {source!r}")
            patterns.append(pattern)
    return ContextSources(tuple(dict.fromkeys(patterns)))


def _needed_stages(
    dockerfile: Dockerfile, build_args: Mapping[str, str], target: str | None
) -> list[list[Instruction]]:
    """The instructions of the stages the ``target`` stage needs, in file order (every
    stage when a stage reference cannot be resolved for certain)."""
    values = dict(dockerfile.global_args(build_args))
    stages: list[list[Instruction]] = []
    names: dict[str, int] = {}
    needs: list[set[int]] = []
    certain = True

    def stage_of(raw: str) -> int | None:
        nonlocal certain
        if "$" in raw:
            certain = False
            return None
        ref = raw.lower()
        if ref in names:
            return names[ref]
        if ref.isdigit() and int(ref) < len(stages) - 1:
            return int(ref)
        return None

    for instruction in dockerfile.instructions:
        if instruction.keyword == "FROM":
            tokens = [t for t in instruction.arguments.split() if not t.startswith("--")]
            stages.append([])
            needs.append(set())
            if tokens:
                ref = substitute(tokens[0], values).lower()
                if "$" in tokens[0] and not ref:
                    certain = False
                if ref in names:
                    needs[-1].add(names[ref])
            if len(tokens) >= 3 and tokens[1].lower() == "as":
                names[tokens[2].lower()] = len(stages) - 1
            continue
        if not stages:
            continue  # global ARGs
        stages[-1].append(instruction)
        for raw, _ in from_flags(instruction):
            index = stage_of(raw)
            if index is not None:
                needs[-1].add(index)
    if not stages:
        return []
    chosen = names.get(target.lower()) if target else len(stages) - 1
    if chosen is None or not certain:
        return stages
    wanted, pending = set(), [chosen]
    while pending:
        index = pending.pop()
        if index not in wanted:
            wanted.add(index)
            pending.extend(needs[index])
    return [stage for index, stage in enumerate(stages) if index in wanted]


@dataclass(frozen=True)
class ContextSources:
    """The files of the build context a Dockerfile takes: ``patterns`` (context-relative
    paths and globs; a directory takes everything below it), or None for the whole context,
    with the ``reason`` (line and instruction) why."""

    patterns: tuple[str, ...] | None
    reason: str = ""

    @property
    def whole(self) -> bool:
        return self.patterns is None


def _whole(line: int, text: str, why: str) -> ContextSources:
    return ContextSources(None, f"line {line}: {text} ({why})")


def _mount_option(option: str) -> tuple[str, str]:
    key, _, value = option.partition("=")
    return key.strip().lower(), value.strip()


# Docker's own frontends (``docker/dockerfile:1``, ``:1.7-labs``, by digest), which read
# COPY and ADD as the built-in one does; any other frontend may read the context otherwise.
_DOCKERFILE_FRONTEND = re.compile(r"^(docker\.io/)?docker/dockerfile(-upstream)?([:@][\w.@:+-]*)?$")
_REMOTE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://|git@)")
_UNCERTAIN = re.compile(r"[$\\\"'`]")  # variables, escapes, quotes: not read literally here


def copy_sources(instruction: Instruction) -> list[str] | None:
    """The source words of a ``COPY``/``ADD`` (flags and destination left out), or None when
    they cannot be read for certain (quotes, escapes, variables; no destination)."""
    words = instruction.arguments.split()
    while words and words[0].startswith("--"):
        words.pop(0)
    rest = " ".join(words)
    if rest.startswith("["):
        try:
            parsed = json.loads(rest)
        except ValueError:
            parsed = None  # not JSON: Docker reads it as the shell form
        if isinstance(parsed, list):
            if not all(isinstance(word, str) for word in parsed):
                return None
            words = parsed
            # the instruction's text has its whitespace collapsed: a name with spaces in it
            # may not be the name in the file
            if any(not word or re.search(r"\s", word) for word in words):
                return None
    if len(words) < 2:
        return None
    sources = [w for w in words[:-1] if not (instruction.heredocs and HEREDOC.fullmatch(w))]
    if any(_UNCERTAIN.search(word) for word in sources):
        return None
    return sources


def _context_pattern(source: str) -> str | None:
    """A source as a context-relative path or glob (``./a/`` and ``/a`` are ``a``), or None
    when it is the whole context, climbs with ``..`` (the builders differ there), or is a glob
    Go's ``filepath.Match`` refuses."""
    path = posixpath.normpath("/" + source).lstrip("/")
    if path in ("", ".") or ".." in source.split("/") or glob_regex(path) is None:
        return None
    return path


def glob_regex(pattern: str) -> re.Pattern[str] | None:
    """Go's ``filepath.Match`` syntax as an anchored regex (``*`` and ``?`` within one path
    component, ``[a-z]`` and ``[^a-z]`` classes), or None for a pattern Go calls malformed."""
    out = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", i + 2 if pattern.startswith("[^", i) else i + 1)
            if end == -1:
                return None
            body = pattern[i + 1 : end]
            negated = body.startswith("^")
            body = body[1:] if negated else body
            if not body or "/" in body or "\\" in body:
                return None
            out.append("[" + ("^/" if negated else "") + body.replace("[", "\\[") + "]")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    try:
        return re.compile("^" + "".join(out) + "$")
    except re.error:
        return None


def has_wildcards(pattern: str) -> bool:
    """Whether a context pattern is a glob (``*``, ``?`` or ``[``) rather than a path."""
    return any(char in pattern for char in "*?[")
