"""What of a build context Docker sends, and what of it a Dockerfile takes.

:class:`DockerIgnore` holds a ``.dockerignore``'s rules, matched with Docker's own rules
(:func:`read_dockerignore` refuses one that is no plain file); :func:`walk_context` walks a
context (or a folder of it) once, as Docker would send it; :class:`Selection` picks the
entries that ``COPY``/``ADD`` sources take (:meth:`stagegate.dockerfile.Dockerfile.context_sources`),
matched as Docker matches them. stagegate's artifacts dir and nox's ``.nox`` are never inputs
(:func:`never_inputs`). The hashing of it is :mod:`stagegate.hashing`'s.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .dockerfile import glob_regex, has_wildcards
from .errors import Code, StagegateError
from .filetypes import file_type


@dataclass(frozen=True)
class _Pattern:
    regex: re.Pattern[str]
    exclusion: bool  # a "!pattern" that re-includes
    text: str


class DockerIgnore:
    """The rules of a ``.dockerignore`` file, matched the way Docker matches them.

    Patterns are relative to the context root, ``*`` and ``?`` stay within one path
    component, ``**`` spans any number, a pattern that matches a directory excludes
    everything below it, ``!`` re-includes, and the last matching pattern wins.
    """

    def __init__(self, lines: list[str]) -> None:
        self.patterns: list[_Pattern] = []
        for line in lines:
            if line.startswith("#"):  # only a '#' in the first column starts a comment
                continue
            text = line.strip()
            if not text:
                continue
            exclusion = text.startswith("!")
            if exclusion:
                text = text[1:].strip()
            text = os.path.normpath(text).replace(os.sep, "/").lstrip("/")
            if text in ("", "."):
                continue
            self.patterns.append(_Pattern(_to_regex(text), exclusion, text))

    @classmethod
    def for_context(cls, context: Path) -> DockerIgnore:
        return cls(read_dockerignore(context).splitlines())

    @property
    def has_exclusions(self) -> bool:
        return any(p.exclusion for p in self.patterns)

    def excluded(self, relpath: str, *, parents_checked: bool = False) -> bool:
        """Whether ``relpath`` (slash-separated, relative to the context) is left out.

        ``parents_checked``: the directories above it are known not to be excluded and there
        are no ``!`` patterns, so only the path itself needs matching (a walk's fast path).
        """
        if not self.patterns:
            return False
        if parents_checked and not self.has_exclusions:
            return any(pattern.regex.match(relpath) for pattern in self.patterns)
        parents = _parents(relpath)
        result = False
        for pattern in self.patterns:
            if any(pattern.regex.match(candidate) for candidate in parents):
                result = not pattern.exclusion
        return result


def read_dockerignore(context: Path) -> str:
    """The text of the context's ``.dockerignore`` ("" when there is none).

    Checked with ``stat`` before it is opened: Docker fails on one that is a directory and
    blocks for ever on a FIFO; stagegate refuses both, naming the file.
    """
    path = context / ".dockerignore"
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise _context_error(path, f"cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise _context_error(path, f"is {file_type(mode)}, not a file")
    try:
        return path.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise _context_error(path, f"cannot be read: {exc.strerror}") from None


def _context_error(path: Path, problem: str) -> StagegateError:
    shown = f"{path.parent.name}/{path.name}"
    return StagegateError(
        Code.BUILD_CONTEXT_INVALID,
        f"{shown} {problem}",
        f"make {shown} a plain text file of ignore rules, or remove it",
        {"file": os.fspath(path)},
    )


def never_inputs(context: Path, paths: Iterable[Path]) -> tuple[str, ...]:
    """Those of ``paths`` that lie inside ``context``, relative to it (``.stagegate``, ``.nox``).

    stagegate's own artifacts dir and nox's environments change during every run: they are
    never inputs of an image, whatever ``.dockerignore`` says.
    """
    found = []
    for path in paths:
        try:
            relpath = path.relative_to(context).as_posix()
        except ValueError:
            continue
        if relpath != ".":
            found.append(relpath)
    return tuple(sorted(found))


def context_files(context: Path, excluded: Iterable[str] = ()) -> Iterator[str]:
    """Relative paths of the files and symlinks Docker would send, sorted; ``excluded``
    (context-relative paths, see :func:`never_inputs`) left out with everything below them."""
    return iter(relpath for relpath, _ in walk_context(context, DockerIgnore.for_context(context), excluded))


def walk_context(
    context: Path, ignore: DockerIgnore, excluded: Iterable[str] = (), under: str = ""
) -> list[tuple[str, os.stat_result]]:
    """One walk of ``context`` (or of its entry ``under``, a context-relative path whose
    parent directories are no symlinks): every entry Docker would send but a directory, with
    its ``lstat``, sorted by path. Symlinks (to directories too) are entries, never followed."""
    never = frozenset(excluded)
    # Without "!" patterns nothing below an excluded directory can come back: prune it, and
    # below a directory that was not pruned only the path itself needs matching.
    prune = not ignore.has_exclusions
    found: list[tuple[str, os.stat_result]] = []
    pending = [("", os.fspath(context))]
    if under:
        if never.intersection(_parents(under)):
            return []
        try:
            info = (context / under).lstat()
        except (FileNotFoundError, NotADirectoryError):
            return []
        if not stat.S_ISDIR(info.st_mode):
            return [] if ignore.excluded(under) else [(under, info)]
        if prune and ignore.excluded(under):  # the full check: its parents too
            return []
        pending = [(under + "/", os.fspath(context / under))]
    while pending:
        prefix, directory = pending.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                relpath = prefix + entry.name
                if relpath in never:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    if not (prune and ignore.excluded(relpath, parents_checked=True)):
                        pending.append((relpath + "/", entry.path))
                elif not ignore.excluded(relpath, parents_checked=prune):
                    found.append((relpath, entry.stat(follow_symlinks=False)))
    found.sort(key=lambda item: item[0])
    return found


def below(path: str, directory: str) -> bool:
    """Whether context-relative ``path`` is ``directory`` or lies below it (``""``: the root)."""
    return directory == "" or path == directory or path.startswith(directory + "/")


def through_symlink(context: Path, relpath: str) -> bool:
    """Whether a directory on the way to ``relpath`` (the path itself left out) is a symlink."""
    parts = relpath.split("/")
    for depth in range(1, len(parts)):
        try:
            mode = (context / "/".join(parts[:depth])).lstat().st_mode
        except OSError:
            return False  # not there: nothing below it either
        if stat.S_ISLNK(mode):
            return True
        if not stat.S_ISDIR(mode):
            return False
    return False


class Selection:
    """The context entries that ``COPY``/``ADD`` sources take, matched as Docker matches
    them: each source is a context-relative path or a Go ``filepath.Match`` glob (``*``,
    ``?`` and ``[…]`` within one path component) and takes what it names, a directory with
    everything below it."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(patterns)
        self._components: list[list[re.Pattern[str]]] = []
        roots: set[str] = set()
        for pattern in self.patterns:
            parts = pattern.split("/")
            compiled = [glob_regex(part) for part in parts]
            if any(c is None for c in compiled):
                raise ValueError(f"{pattern!r} is not a pattern Docker matches")
            self._components.append(compiled)  # type: ignore[arg-type]
            literal = []
            for part in parts:
                if has_wildcards(part):
                    break
                literal.append(part)
            roots.add("/".join(literal))
        # walked from the literal part of each source, each subtree once
        self.roots = tuple(sorted(r for r in roots if not any(o != r and below(r, o) for o in roots)))

    def selects(self, relpath: str) -> bool:
        """Whether a source names ``relpath`` or a directory above it."""
        parts = relpath.split("/")
        return any(
            len(components) <= len(parts)
            and all(c.fullmatch(p) for c, p in zip(components, parts, strict=False))
            for components in self._components
        )

    def reaches(self, relpath: str) -> bool:
        """Whether a source names ``relpath`` or runs through it (``relpath`` is matched by
        the source's leading components): where Docker would follow a symlink."""
        parts = relpath.split("/")
        return any(
            len(parts) <= len(components)
            and all(c.fullmatch(p) for c, p in zip(components, parts, strict=False))
            for components in self._components
        )


def _parents(relpath: str) -> list[str]:
    """``a/b/c`` -> ``["a/b/c", "a", "a/b"]``: the path and every directory above it."""
    parts = relpath.split("/")
    return [relpath] + ["/".join(parts[:i]) for i in range(1, len(parts))]


def _to_regex(pattern: str) -> re.Pattern[str]:
    """Docker's pattern syntax (Go filepath.Match plus ``**``) as an anchored regex."""
    out = ["^"]
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            if pattern.startswith("**", i):
                i += 2
                if pattern.startswith("/", i):
                    i += 1
                    out.append("(?:.*/)?")
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = pattern[i + 1 : end]
                if body.startswith("^"):
                    body = "!" + body[1:]
                out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
                i = end
        elif char == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(char))
        i += 1
    out.append("$")
    return re.compile("".join(out))
