"""Content hashes of build inputs: what decides whether an image must be rebuilt.

The input hash of an image covers the files of its build context that its Dockerfile takes
(the ``COPY``/``ADD`` sources, :class:`Selection`; the whole context where the Dockerfile
cannot be read for certain), as Docker would send them (``.dockerignore`` honoured, with
Docker's own matching rules), the Dockerfile, the build args, and the image IDs of
everything it is built ``FROM`` (configured images and external base images). Same inputs,
same hash, same tag: the build is skipped.

stagegate's artifacts dir and nox's ``.nox`` are never inputs (:func:`never_inputs`). A
:class:`ContextHasher` walks each context once per stage and remembers file digests across
runs in a stat cache, so that an unchanged context costs one directory walk.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import stat
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from . import redact
from .dockerfile import glob_regex, has_wildcards
from .errors import Code, StagegateError
from .filetypes import file_type
from .ledger import write_text_atomic

log = logging.getLogger(__name__)

HASH_VERSION = "2"  # bump when what goes into the hash changes (2: only what COPY/ADD take)


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


def file_digest(path: Path, info: os.stat_result | None = None) -> str:
    """Digest of one context entry: content and executable bit; a symlink by its target.

    Other mode bits are left out on purpose: they follow the umask of each checkout, while
    git itself records only the executable bit.
    """
    info = info or path.lstat()
    digest = hashlib.sha256()
    if stat.S_ISLNK(info.st_mode):
        digest.update(b"link:" + os.readlink(path).encode())
    elif not stat.S_ISREG(info.st_mode):
        # A FIFO, socket or device is never opened (a FIFO blocks, a device never ends).
        # Docker sends none of them with content: the legacy builder sends FIFOs and devices
        # as tar entries (type, mode, device numbers) and skips sockets; BuildKit sends
        # devices and sockets as empty files and drops FIFOs. So the entry's type, executable
        # bit and device numbers are what can change the image.
        digest.update(b"special:" + oct(stat.S_IFMT(info.st_mode)).encode())
        digest.update(b":x" if info.st_mode & 0o111 else b":-")
        if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode):
            digest.update(f":{os.major(info.st_rdev)},{os.minor(info.st_rdev)}".encode())
    else:
        digest.update(b"x" if info.st_mode & 0o111 else b"-")
        with path.open("rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


# -- hashing once per stage, remembered across runs ------------------------------------------

CACHE_VERSION = 1
CACHE_FILE = "hash-cache.json"
# A file changed within this long before hashing began may change again without its stat
# changing (timestamps are only as fine as the filesystem's clock tick: a jiffy on ext4,
# 1-2 s elsewhere): its cached digest is never trusted (git's "racy clean" problem).
RACY_MARGIN_NS = 2_000_000_000


def _signature(info: os.stat_result) -> tuple[int, ...]:
    """What must be unchanged for a cached digest to stand: ctime moves on every write,
    chmod, rename and utime, and no program can set it back."""
    return (info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_dev, info.st_mode)


@dataclass(frozen=True)
class _CachedDigest:
    signature: tuple[int, ...]
    digest: str


class ContextHasher:
    """File digests of build contexts for one stage.

    Each distinct (context, ``.dockerignore``, never-inputs) is walked once and shared by
    every image that uses it (safe from several build threads). A file's digest is reused
    from the stat cache (``hash-cache.json`` in the artifacts dir) when its size, mtime,
    ctime, inode, device and mode are unchanged *and* it was last changed safely before the
    hashing that produced the entry began; otherwise it is read again. :meth:`save` writes
    the cache atomically; a missing, corrupt or foreign cache is ignored.
    """

    def __init__(
        self,
        cache_path: Path | None,
        *,
        now_ns: Callable[[], int] | None = None,
        lstat: Callable[[Path], os.stat_result] | None = None,
    ) -> None:
        """``now_ns``: the wall clock (default: ours or the cache filesystem's, the earlier);
        ``lstat``: how a file's stat is read for the cache (tests: a coarse-clock filesystem)."""
        self.cache_path = cache_path
        self._lstat = lstat
        self._lock = threading.Lock()
        self._walks: dict[tuple[tuple[str, str, tuple[str, ...]], str], _Walk] = {}
        self._started_ns = now_ns() if now_ns is not None else min(time.time_ns(), self._filesystem_now_ns())
        self._cached = self._load()
        self._fresh: dict[str, _CachedDigest] = {}
        self._walked: set[str] = set()
        self.stats = {"walks": 0, "hashed": 0, "from_cache": 0}

    # -- reading -------------------------------------------------------------------------
    def files(
        self, context: Path, excluded: Iterable[str] = (), sources: Collection[str] | None = None
    ) -> dict[str, str]:
        """Context-relative path -> digest of every entry Docker would send, less ``excluded``;
        given ``sources`` (:meth:`stagegate.dockerfile.Dockerfile.context_sources`), only the
        entries they select (the whole context again where a source path runs through or
        onto a symlink, which Docker follows there)."""
        ignore_text = read_dockerignore(context)
        key = (os.fspath(context), ignore_text, tuple(sorted(excluded)))
        entries = None
        if sources is not None:
            entries = self._selected(context, key, Selection(sources))
        if entries is None:
            entries = self._entries(context, key, "")
        return {relpath: self._digest_of(context / relpath, info) for relpath, info in entries}

    def digest(self, path: Path) -> str:
        """The digest of one file (a Dockerfile), through the cache too."""
        info = path.lstat()
        return self._digest_of(path, info)

    def _selected(
        self, context: Path, key: tuple[str, str, tuple[str, ...]], selection: Selection
    ) -> list[tuple[str, os.stat_result]] | None:
        """The entries ``selection`` takes, from walks of its roots only; None when a symlink
        lies on the way to a source (Docker follows it: the whole context is hashed then)."""
        found: list[tuple[str, os.stat_result]] = []
        for root in selection.roots:
            if _through_symlink(context, root):
                return None
            for relpath, info in self._entries(context, key, root):
                if stat.S_ISLNK(info.st_mode) and selection.reaches(relpath):
                    return None
                if selection.selects(relpath):
                    found.append((relpath, info))
        return found

    def _entries(
        self, context: Path, key: tuple[str, str, tuple[str, ...]], under: str
    ) -> list[tuple[str, os.stat_result]]:
        """The walk of ``under`` (``""``: the whole context), done once per stage: a finished
        walk of it or of a directory above it serves every later image."""
        with self._lock:
            for (other_key, other), walk in self._walks.items():
                if other_key == key and walk.entries is not None and _below(under, other):
                    if other == under:
                        return walk.entries
                    return [e for e in walk.entries if e[0] == under or e[0].startswith(under + "/")]
            walk = self._walks.setdefault((key, under), _Walk())
        with walk.lock:  # the first image of a context walks it, the others wait for that
            if walk.entries is None:
                entries = walk_context(context, DockerIgnore(key[1].splitlines()), key[2], under)
                with self._lock:
                    self.stats["walks"] += 1
                    self._walked.add(os.path.join(key[0], under))
                walk.entries = entries
        return walk.entries

    def _digest_of(self, path: Path, info: os.stat_result) -> str:
        if self._lstat is not None:
            info = self._lstat(path)
        key = os.fspath(path)
        signature = _signature(info)
        with self._lock:
            done = self._fresh.get(key)  # another image of this stage took the same file
        if done is not None and done.signature == signature:
            return done.digest
        cached = self._cached.get(key)
        if (
            cached is not None
            and cached.signature == signature
            and max(info.st_mtime_ns, info.st_ctime_ns) < self._valid_before_ns
        ):
            with self._lock:
                self.stats["from_cache"] += 1
                self._fresh[key] = cached
            return cached.digest
        digest = file_digest(path, info)
        with self._lock:
            self.stats["hashed"] += 1
            self._fresh[key] = _CachedDigest(signature, digest)
        return digest

    @property
    def _valid_before_ns(self) -> int:
        return self._cached_started_ns - RACY_MARGIN_NS

    # -- the cache file ------------------------------------------------------------------
    def _filesystem_now_ns(self) -> int:
        """The clock of the filesystem the cache lives on (it may not be ours: NFS)."""
        if self.cache_path is None:
            return time.time_ns()
        probe = self.cache_path.with_name(f".{self.cache_path.name}.clock")
        try:
            probe.parent.mkdir(parents=True, exist_ok=True)
            probe.touch()
            return probe.stat().st_mtime_ns
        except OSError:
            return time.time_ns()

    def _load(self) -> dict[str, _CachedDigest]:
        """The entries of the cache file, with the time the hashing behind them began."""
        self._cached_started_ns = 0
        if self.cache_path is None:
            return {}
        try:
            document = json.loads(self.cache_path.read_text())
            if document.get("version") != f"{CACHE_VERSION}/{HASH_VERSION}":
                return {}
            started = document["started_ns"]
            entries = {
                path: _CachedDigest(tuple(int(n) for n in entry[:-1]), str(entry[-1]))
                for path, entry in document["entries"].items()
                if isinstance(entry, list) and len(entry) == 7
            }
            if not isinstance(started, int):
                return {}
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            log.debug("hash cache %s ignored: %s", self.cache_path, exc)
            return {}
        self._cached_started_ns = started
        return entries

    def save(self) -> None:
        """Write what this stage hashed or confirmed, plus the entries of contexts it did not
        walk; nothing when nothing changed. Errors are logged, never raised: the cache only
        saves time."""
        if self.cache_path is None:
            return
        with self._lock:
            walked = tuple(w.rstrip("/") + "/" for w in self._walked)
            # Carried over: entries of contexts not walked now that were trusted when written
            # (a racy entry is judged by its own run's start, which the file does not keep).
            kept = {
                path: entry
                for path, entry in self._cached.items()
                if path not in self._fresh
                and not path.startswith(walked)
                and max(entry.signature[1], entry.signature[2]) < self._valid_before_ns
            }
            entries = {**kept, **self._fresh}
            unchanged = self.stats["hashed"] == 0 and entries.keys() == self._cached.keys()
        if unchanged:
            return
        document = {
            "version": f"{CACHE_VERSION}/{HASH_VERSION}",
            # entries hashed now are judged against this run's start; entries carried over
            # were older than an earlier start, hence older than this one too
            "started_ns": self._started_ns,
            "entries": {path: [*e.signature, e.digest] for path, e in sorted(entries.items())},
        }
        try:
            write_text_atomic(self.cache_path, json.dumps(document, separators=(",", ":")))
        except OSError as exc:
            log.warning("could not write the hash cache %s: %s", self.cache_path, exc)


@dataclass
class _Walk:
    lock: threading.Lock = field(default_factory=threading.Lock)
    entries: list[tuple[str, os.stat_result]] | None = None


def _below(path: str, directory: str) -> bool:
    """Whether context-relative ``path`` is ``directory`` or lies below it (``""``: the root)."""
    return directory == "" or path == directory or path.startswith(directory + "/")


def _through_symlink(context: Path, relpath: str) -> bool:
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
        self.roots = tuple(sorted(r for r in roots if not any(o != r and _below(r, o) for o in roots)))

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


@dataclass(frozen=True)
class Inputs:
    """Everything that decides an image's content; its :meth:`digest` is the input hash.

    Kept next to the ledger after each build, so that verify can say *which* input changed.
    """

    dockerfile: str
    build_args: dict[str, str]
    bases: dict[str, str]  # base reference -> image ID
    files: dict[str, str]  # context-relative path -> file digest
    options: dict[str, str] = field(default_factory=dict)  # target, platforms, secret ids, labels

    def digest(self) -> str:
        # every part followed by a NUL, hashed as one string (thousands of files: one update)
        parts = ["stagegate-input-hash", HASH_VERSION, "dockerfile", self.dockerfile]
        for name in sorted(self.build_args):
            parts += ("arg", name, self.build_args[name])
        for ref in sorted(self.bases):
            parts += ("from", ref, self.bases[ref])
        for relpath in sorted(self.files):
            parts += ("file", relpath, self.files[relpath])
        for name in sorted(self.options):  # none: the same hash as before options existed
            parts += ("option", name, self.options[name])
        return hashlib.sha256(("\0".join(parts) + "\0").encode()).hexdigest()

    def to_json(self) -> dict[str, object]:
        return {
            "dockerfile": self.dockerfile,
            "build_args": self.build_args,
            "bases": self.bases,
            "files": self.files,
            "options": self.options,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Inputs:
        return cls(
            dockerfile=str(data["dockerfile"]),
            build_args=dict(data["build_args"]),  # type: ignore[call-overload]
            bases=dict(data["bases"]),  # type: ignore[call-overload]
            files=dict(data["files"]),  # type: ignore[call-overload]
            options=dict(data.get("options") or {}),  # type: ignore[call-overload]
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
        for name in sorted(set(before.options) | set(self.options)):
            if before.options.get(name) != self.options.get(name):
                changes.append(f"{name} changed in the configuration")
        for ref in sorted(set(before.bases) | set(self.bases)):
            if before.bases.get(ref) != self.bases.get(ref):
                changes.append(f"base image {ref} changed")
        return changes


def collect_inputs(
    context: Path,
    dockerfile: Path,
    build_args: Mapping[str, str],
    base_image_ids: Mapping[str, str],
    *,
    excluded: Iterable[str] = (),
    hasher: ContextHasher | None = None,
    secret_args: Collection[str] = (),
    options: Mapping[str, str] | None = None,
    sources: Collection[str] | None = None,
) -> Inputs:
    """Read the inputs of one image from disk (through ``hasher``, shared by a stage).

    ``sources``: the context paths and globs its Dockerfile takes (None: the whole context).

    The build args named in ``secret_args`` are kept as their fingerprint
    (:func:`stagegate.redact.fingerprint`), never their value: the inputs file holds no secret,
    and a changed secret still changes the hash — as it changes Docker's own cache keys.
    """
    hasher = hasher or ContextHasher(None)
    return Inputs(
        dockerfile=hasher.digest(dockerfile),
        build_args={
            name: redact.fingerprint(value) if name in secret_args else value
            for name, value in build_args.items()
        },
        bases=dict(base_image_ids),
        files=hasher.files(context, excluded, sources),
        options=dict(options or {}),
    )


def input_hash(
    context: Path,
    dockerfile: Path,
    build_args: Mapping[str, str],
    base_image_ids: Mapping[str, str],
    *,
    excluded: Iterable[str] = (),
    hasher: ContextHasher | None = None,
    sources: Collection[str] | None = None,
) -> str:
    """The input hash of one image (hex sha256)."""
    return collect_inputs(
        context, dockerfile, build_args, base_image_ids, excluded=excluded, hasher=hasher, sources=sources
    ).digest()


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
