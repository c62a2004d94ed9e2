"""Just enough Dockerfile parsing: instructions with their line numbers, and the images used.

Used to infer dependencies from ``FROM`` lines (and ``COPY --from``/``RUN --mount=from``
naming an image), to check external images in preflight, to tell which lines need BuildKit,
to map a failed build step back to the Dockerfile line that broke, and to read which files
of the build context the image takes (``COPY``/``ADD`` sources: :meth:`Dockerfile.context_sources`).

What it follows of Docker's parser: parser directives at the top (``# syntax=``,
``# escape=``), line continuations, heredocs (``RUN <<EOF`` … ``EOF``: the body belongs to
the instruction, it is not parsed as instructions), a UTF-8 byte order mark, ``ARG`` words
with Docker's quoting (``ARG X="a b"``, ``ARG X=it\\'s``; an unmatched quote is an error, as
in Docker), and BuildKit's automatic platform args (:data:`PLATFORM_ARGS`).
"""

from __future__ import annotations

import json
import posixpath
import re
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from .references import repository


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


@dataclass(frozen=True)
class BaseRef:
    """An image a Dockerfile uses (``FROM``, ``COPY --from``, ``RUN --mount=from``), with
    build args applied."""

    line: int
    ref: str  # resolved reference, e.g. "python:3.12-slim"
    raw: str  # as written, e.g. "${BASE_IMAGE}"
    stage_alias: str | None  # "AS builder"
    internal: bool  # names an earlier stage of the same Dockerfile (by name or index), or scratch
    instruction: str = "FROM"  # or "COPY --from", "RUN --mount=from"
    # Build args the reference uses plainly (``${NAME}``, no ``:-default``) that have no value:
    # declared without a default and not given, or not declared at all. An arg set to "" is
    # not among them. BuildKit's automatic platform args are never listed.
    unset_args: tuple[str, ...] = ()

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
    directives: Mapping[str, tuple[int, str]] = field(default_factory=dict)  # name -> (line, value)

    @classmethod
    def parse(cls, text: str, path: Path | None = None) -> Dockerfile:
        # A UTF-8 byte order mark at the start is dropped, as Docker's parser drops it.
        text = text.removeprefix("\ufeff")
        directives = _directives(text)
        escape = directives.get("escape", (0, "\\"))[1]
        return cls(path=path, instructions=tuple(_instructions(text, escape)), directives=directives)

    def global_args(
        self, build_args: Mapping[str, str] | None = None, platform: Mapping[str, str] | None = None
    ) -> dict[str, str | None]:
        """``ARG`` declarations before the first ``FROM``: their values with ``build_args``
        applied (a default may use earlier ARGs, as in ``ARG BASE=${REGISTRY}/base``).
        ``platform`` (:func:`platform_args`) gives BuildKit's automatic args their values."""
        build_args = build_args or {}
        args: dict[str, str | None] = {}
        for instruction in self.instructions:
            if instruction.keyword == "FROM":
                break
            if instruction.keyword == "ARG":
                for token in _words(instruction.arguments, None, instruction.line, raw=True):
                    name, sep, default = token.partition("=")
                    if name in build_args:
                        args[name] = build_args[name]
                    elif sep:
                        values = {**(platform or {}), **args}
                        args[name] = _expand_words(default, values, instruction.line)
                    else:
                        args[name] = (platform or {}).get(name)
        return args

    def base_refs(
        self, build_args: Mapping[str, str], platform: Mapping[str, str] | None = None
    ) -> list[BaseRef]:
        """Every ``FROM`` line's image, resolved with the global ARG defaults and ``build_args``
        (and, given ``platform``, BuildKit's automatic platform args, which FROM lines see)."""
        return [ref for ref in self.image_refs(build_args, platform) if ref.instruction == "FROM"]

    def image_refs(
        self, build_args: Mapping[str, str], platform: Mapping[str, str] | None = None
    ) -> list[BaseRef]:
        """Every image the Dockerfile uses: ``FROM`` lines, ``COPY --from=<image>`` and
        ``RUN --mount=from=<image>`` (a stage name or index of this Dockerfile is internal)."""
        values: dict[str, str | None] = {**(platform or {}), **self.global_args(build_args, platform)}
        refs: list[BaseRef] = []
        aliases: set[str] = set()
        stages = 0
        for instruction in self.instructions:
            for raw, what in _from_flags(instruction):
                ref = _substitute(raw, values)
                internal = ref.lower() in aliases or (ref.isdigit() and int(ref) < stages)
                refs.append(
                    BaseRef(
                        instruction.line,
                        ref,
                        raw,
                        None,
                        internal or ref == "scratch",
                        what,
                        _unset(raw, values),
                    )
                )
            if instruction.keyword != "FROM":
                continue
            stages += 1
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
                    unset_args=_unset(raw, values),
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

    def context_sources(
        self, build_args: Mapping[str, str] | None = None, target: str | None = None
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
        syntax = self.directives.get("syntax")
        if syntax is not None and not _DOCKERFILE_FRONTEND.match(syntax[1]):
            return _whole(syntax[0], f"# syntax={syntax[1]}", "a frontend of its own")
        stages = self._stages(build_args or {}, target)
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

    def _stages(self, build_args: Mapping[str, str], target: str | None) -> list[list[Instruction]]:
        """The instructions of the stages the ``target`` stage needs, in file order (every
        stage when a stage reference cannot be resolved for certain)."""
        values = dict(self.global_args(build_args))
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

        for instruction in self.instructions:
            if instruction.keyword == "FROM":
                tokens = [t for t in instruction.arguments.split() if not t.startswith("--")]
                stages.append([])
                needs.append(set())
                if tokens:
                    ref = _substitute(tokens[0], values).lower()
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
            for raw, _ in _from_flags(instruction):
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

    @property
    def syntax_directive(self) -> tuple[int, str] | None:
        """``(line, "# syntax=…")`` when the Dockerfile names a frontend image: BuildKit pulls
        it; the legacy builder ignores the line."""
        if "syntax" not in self.directives:
            return None
        line, value = self.directives["syntax"]
        return line, f"# syntax={value}"

    @property
    def stage_names(self) -> list[str]:
        """The ``AS`` names of the stages, in order (for ``target``)."""
        names = []
        for instruction in self.instructions:
            words = instruction.arguments.split()
            if instruction.keyword == "FROM" and len(words) >= 3 and words[-2].lower() == "as":
                names.append(words[-1])
        return names

    def buildkit_needs(self, build_args: Mapping[str, str] | None = None) -> list[BuildKitNeed]:
        """The lines that only BuildKit builds as written, in order (empty: the legacy builder
        builds it the same). A platform arg given as a build arg is no need: the legacy
        builder then has its value too. A ``# syntax=`` directive is no need either: the
        legacy builder ignores a parser directive it does not know, as Docker documents, and
        builds the rest (see :attr:`syntax_directive`)."""
        build_args = build_args or {}
        needs: list[BuildKitNeed] = []
        for instruction in self.instructions:
            flags = instruction.flags()
            if instruction.keyword == "RUN" and flags:
                flag = next(iter(flags))
                needs.append(BuildKitNeed(instruction.line, f"RUN --{flag}", f"the RUN --{flag} flag"))
            if instruction.heredocs:
                needs.append(
                    BuildKitNeed(instruction.line, f"{instruction.keyword} <<", "a heredoc", frontend=True)
                )
            if instruction.keyword in ("COPY", "ADD"):
                for flag in flags:
                    if flag in _NEWER_FRONTEND_FLAGS:
                        needs.append(
                            BuildKitNeed(
                                instruction.line,
                                f"{instruction.keyword} --{flag}",
                                f"the {instruction.keyword} --{flag} flag",
                                frontend=True,
                            )
                        )
                    elif flag in _BUILDKIT_FLAGS:
                        needs.append(
                            BuildKitNeed(
                                instruction.line,
                                f"{instruction.keyword} --{flag}",
                                f"the {instruction.keyword} --{flag} flag",
                            )
                        )
            if instruction.keyword != "ARG":
                for name in _references(instruction.arguments):
                    if name in PLATFORM_ARGS and name not in build_args:
                        needs.append(
                            BuildKitNeed(
                                instruction.line,
                                name,
                                f"BuildKit's automatic {name} arg (empty with the legacy builder)",
                            )
                        )
        return needs


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
    sources = [w for w in words[:-1] if not (instruction.heredocs and _HEREDOC.fullmatch(w))]
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


@dataclass(frozen=True)
class BuildKitNeed:
    """A Dockerfile line that needs BuildKit: ``what`` is the feature as written."""

    line: int
    what: str  # "RUN --mount", "TARGETARCH", "COPY --link", ...
    description: str
    # Also needs a Dockerfile frontend newer than the one built into engines before 23.0
    # (heredocs, ``COPY --link``): a ``# syntax=`` directive or a newer engine provides it.
    frontend: bool = False


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
_BUILDKIT_FLAGS = ("chmod",)
_NEWER_FRONTEND_FLAGS = ("link", "checksum", "keep-git-dir", "parents", "exclude")


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


def _from_flags(instruction: Instruction) -> list[tuple[str, str]]:
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
_HEREDOC = re.compile(r"<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")


def _directives(text: str) -> dict[str, tuple[int, str]]:
    """Parser directives: ``# name=value`` lines at the very top, before any other line."""
    found: dict[str, tuple[int, str]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        match = _DIRECTIVE.match(line)
        if not match or match.group(1).lower() in found:
            break
        found[match.group(1).lower()] = (number, match.group(2))
    return found


def _instructions(text: str, escape: str = "\\") -> list[Instruction]:
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
            heredoc_ends = [(m.group(3), m.group(1) == "-") for m in _HEREDOC.finditer(result[-1].arguments)]
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


def _references(text: str) -> list[str]:
    """Names of the variables ``text`` refers to (``$X``, ``${X}``, ``${X:-y}``)."""
    return [m.group("name") or m.group("bare") for m in _REFERENCE.finditer(text)]


def _words(text: str, values: Mapping[str, str | None] | None, line: int, *, raw: bool = False) -> list[str]:
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
        current.append(_substitute(match.group(0), values))
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


def _expand_words(text: str, values: Mapping[str, str | None], line: int) -> str:
    """One ``ARG`` default, quotes removed and variables expanded."""
    return " ".join(_words(text, values, line)) if text else ""


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


def _unset(text: str, values: Mapping[str, str | None]) -> tuple[str, ...]:
    """The variables ``text`` uses without a fallback that have no value (``None`` or absent)."""
    names: list[str] = []
    for match in _REFERENCE.finditer(text):
        name = match.group("name") or match.group("bare")
        if match.group("op") or values.get(name) is not None or name in PLATFORM_ARGS:
            continue
        if name not in names:
            names.append(name)
    return tuple(names)
