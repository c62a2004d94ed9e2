"""Content hashes of build inputs: what decides whether an image must be rebuilt.

The input hash of an image covers the files Docker would send as its build context
(``.dockerignore`` honoured, with Docker's own matching rules), the Dockerfile, the build
args, and the image IDs of everything it is built ``FROM`` (configured images and external
base images). Same inputs, same hash, same tag: the build is skipped.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

HASH_VERSION = "1"  # bump when what goes into the hash changes


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
        path = context / ".dockerignore"
        return cls(path.read_text().splitlines() if path.is_file() else [])

    @property
    def has_exclusions(self) -> bool:
        return any(p.exclusion for p in self.patterns)

    def excluded(self, relpath: str) -> bool:
        """Whether ``relpath`` (slash-separated, relative to the context) is left out."""
        parents = _parents(relpath)
        result = False
        for pattern in self.patterns:
            if any(pattern.regex.match(candidate) for candidate in parents):
                result = not pattern.exclusion
        return result


def context_files(context: Path) -> Iterator[str]:
    """Relative paths of the files and symlinks Docker would send, sorted."""
    ignore = DockerIgnore.for_context(context)
    prune = not ignore.has_exclusions
    found: list[str] = []
    for directory, dirnames, filenames in os.walk(context):
        base = Path(directory).relative_to(context).as_posix()
        prefix = "" if base == "." else base + "/"
        if prune:
            dirnames[:] = [d for d in dirnames if not ignore.excluded(prefix + d)]
        for name in filenames:
            relpath = prefix + name
            if not ignore.excluded(relpath):
                found.append(relpath)
        # symlinks to directories are sent as links, not followed
        for name in list(dirnames):
            if (Path(directory) / name).is_symlink():
                dirnames.remove(name)
                if not ignore.excluded(prefix + name):
                    found.append(prefix + name)
    return iter(sorted(found))


def file_digest(path: Path) -> str:
    """Digest of one context entry: content and executable bit; a symlink by its target.

    Other mode bits are left out on purpose: they follow the umask of each checkout, while
    git itself records only the executable bit.
    """
    info = path.lstat()
    digest = hashlib.sha256()
    if stat.S_ISLNK(info.st_mode):
        digest.update(b"link:" + os.readlink(path).encode())
    else:
        digest.update(b"x" if info.st_mode & 0o111 else b"-")
        with path.open("rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Inputs:
    """Everything that decides an image's content; its :meth:`digest` is the input hash.

    Kept next to the ledger after each build, so that verify can say *which* input changed.
    """

    dockerfile: str
    build_args: dict[str, str]
    bases: dict[str, str]  # base reference -> image ID
    files: dict[str, str]  # context-relative path -> file digest

    def digest(self) -> str:
        digest = hashlib.sha256()

        def feed(*parts: str) -> None:
            for part in parts:
                digest.update(part.encode())
                digest.update(b"\0")

        feed("stagegate-input-hash", HASH_VERSION)
        feed("dockerfile", self.dockerfile)
        for name in sorted(self.build_args):
            feed("arg", name, self.build_args[name])
        for ref in sorted(self.bases):
            feed("from", ref, self.bases[ref])
        for relpath in sorted(self.files):
            feed("file", relpath, self.files[relpath])
        return digest.hexdigest()

    def to_json(self) -> dict[str, object]:
        return {
            "dockerfile": self.dockerfile,
            "build_args": self.build_args,
            "bases": self.bases,
            "files": self.files,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Inputs:
        return cls(
            dockerfile=str(data["dockerfile"]),
            build_args=dict(data["build_args"]),  # type: ignore[call-overload]
            bases=dict(data["bases"]),  # type: ignore[call-overload]
            files=dict(data["files"]),  # type: ignore[call-overload]
        )

    def changes_since(self, before: Inputs) -> list[str]:
        """What differs from ``before``, most telling first: files, Dockerfile, args, bases."""
        changes: list[str] = []
        for path in sorted(set(before.files) | set(self.files)):
            if path not in self.files:
                changes.append(f"{path} was removed")
            elif path not in before.files:
                changes.append(f"{path} was added")
            elif before.files[path] != self.files[path]:
                changes.append(f"{path} changed")
        if before.dockerfile != self.dockerfile:
            changes.append("the Dockerfile changed")
        for name in sorted(set(before.build_args) | set(self.build_args)):
            if before.build_args.get(name) != self.build_args.get(name):
                changes.append(f"build arg {name} changed")
        for ref in sorted(set(before.bases) | set(self.bases)):
            if before.bases.get(ref) != self.bases.get(ref):
                changes.append(f"base image {ref} changed")
        return changes


def collect_inputs(
    context: Path,
    dockerfile: Path,
    build_args: Mapping[str, str],
    base_image_ids: Mapping[str, str],
) -> Inputs:
    """Read the inputs of one image from disk."""
    return Inputs(
        dockerfile=file_digest(dockerfile),
        build_args=dict(build_args),
        bases=dict(base_image_ids),
        files={relpath: file_digest(context / relpath) for relpath in context_files(context)},
    )


def input_hash(
    context: Path,
    dockerfile: Path,
    build_args: Mapping[str, str],
    base_image_ids: Mapping[str, str],
) -> str:
    """The input hash of one image (hex sha256)."""
    return collect_inputs(context, dockerfile, build_args, base_image_ids).digest()


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
