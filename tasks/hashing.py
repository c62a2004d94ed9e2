"""Content hashes of build inputs: what decides whether an image must be rebuilt.

The input hash of an image covers the files of its build context that its Dockerfile takes
(the ``COPY``/``ADD`` sources; the whole context where the Dockerfile cannot be read for
certain), as Docker would send them (:mod:`stagegate.buildcontext`: ``.dockerignore``
honoured, with Docker's own matching rules), the Dockerfile, the build args, and the image IDs
of everything it is built ``FROM`` (configured images and external base images). Same inputs,
same hash, same tag: the build is skipped.

A :class:`ContextHasher` walks each context once per stage and remembers file digests across
runs in a stat cache, so that an unchanged context costs one directory walk.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from . import redact
from .buildcontext import DockerIgnore, Selection, below, read_dockerignore, through_symlink, walk_context
from .ledger import write_text_atomic

log = logging.getLogger(__name__)

HASH_VERSION = "2"  # bump when what goes into the hash changes (2: only what COPY/ADD take)


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
            if through_symlink(context, root):
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
                if other_key == key and walk.entries is not None and below(under, other):
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
