"""stagegate.hashing: file digests, input hashes, the ContextHasher (one walk per context and
stage, the stat cache across runs)."""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from stagegate.hashing import (
    CACHE_FILE,
    CACHE_VERSION,
    HASH_VERSION,
    ContextHasher,
    collect_inputs,
    file_digest,
)


def write(root: Path, files: dict[str, str]) -> None:
    for relpath, text in files.items():
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


# -- file_digest -------------------------------------------------------------------------------


def test_file_digest_of_a_symlink_is_its_target_not_the_content(tmp_path: Path) -> None:
    write(tmp_path, {"a": "same", "b": "same"})
    (tmp_path / "link").symlink_to("a")
    before = file_digest(tmp_path / "link")

    (tmp_path / "a").write_text("changed")
    assert file_digest(tmp_path / "link") == before

    (tmp_path / "link").unlink()
    (tmp_path / "link").symlink_to("b")
    assert file_digest(tmp_path / "link") != before


# -- the input hash ----------------------------------------------------------------------------


class Inputs:
    """One image's build inputs in tmp_path: a context (with .dockerignore) and a Dockerfile outside it."""

    def __init__(self, root: Path) -> None:
        self.context = root / "context"
        self.dockerfile = root / "Dockerfile"
        write(
            self.context,
            {
                "app.py": "print('hi')\n",
                "run.sh": "#!/bin/sh\n",
                "cache/x.tmp": "",
                ".dockerignore": "cache\n",
            },
        )
        (self.context / "run.sh").chmod(0o644)
        (self.context / "app.py").chmod(0o644)
        self.dockerfile.write_text("FROM busybox\nCOPY . /app\n")
        self.build_args = {"A": "1", "B": "2"}
        self.base_image_ids = {"busybox": "sha256:aaa", "example/base": "sha256:bbb"}

    def hash(self) -> str:
        return collect_inputs(self.context, self.dockerfile, self.build_args, self.base_image_ids).digest()


def _set(mapping: dict[str, str], key: str, value: str) -> None:
    mapping[key] = value


CHANGES: dict[str, Callable[[Inputs], object]] = {
    "context file content": lambda i: (i.context / "app.py").write_text("print('bye')\n"),
    "executable bit": lambda i: (i.context / "run.sh").chmod(0o755),
    "new context file": lambda i: (i.context / "new.txt").write_text(""),
    "removed context file": lambda i: (i.context / "app.py").unlink(),
    "renamed context file": lambda i: (i.context / "app.py").rename(i.context / "main.py"),
    "dockerignore": lambda i: (i.context / ".dockerignore").write_text("cache\nrun.sh\n"),
    "build arg value": lambda i: _set(i.build_args, "B", "3"),
    "new build arg": lambda i: _set(i.build_args, "C", ""),
    "build arg name": lambda i: i.build_args.update({"Z": i.build_args.pop("B")}),
    "base image id": lambda i: _set(i.base_image_ids, "example/base", "sha256:ccc"),
    "new base image": lambda i: _set(i.base_image_ids, "alpine", "sha256:ddd"),
    "dockerfile": lambda i: i.dockerfile.write_text("FROM busybox\nCOPY . /srv\n"),
}


@pytest.mark.parametrize("change", CHANGES)
def test_input_hash_changes_when_an_input_changes(tmp_path: Path, change: str) -> None:
    inputs = Inputs(tmp_path)
    before = inputs.hash()

    CHANGES[change](inputs)

    assert inputs.hash() != before


SAME: dict[str, Callable[[Inputs], object]] = {
    "ignored file content": lambda i: (i.context / "cache" / "x.tmp").write_text("changed"),
    "new ignored file": lambda i: (i.context / "cache" / "y.tmp").write_text(""),
    "non-executable mode bits": lambda i: (i.context / "app.py").chmod(0o600),
    "build args order": lambda i: setattr(i, "build_args", dict(reversed(list(i.build_args.items())))),
    "base images order": lambda i: setattr(
        i, "base_image_ids", dict(reversed(list(i.base_image_ids.items())))
    ),
    "mtime": lambda i: os.utime(i.context / "app.py", (0, 0)),
}


@pytest.mark.parametrize("change", SAME)
def test_input_hash_is_unchanged_by_what_does_not_reach_the_build(tmp_path: Path, change: str) -> None:
    inputs = Inputs(tmp_path)
    before = inputs.hash()

    SAME[change](inputs)

    assert inputs.hash() == before


def test_input_hash_keeps_fields_apart(tmp_path: Path) -> None:
    """Moving text between a build arg's name and value must not give the same hash."""
    inputs = Inputs(tmp_path)
    inputs.build_args = {"AB": "C"}
    first = inputs.hash()

    inputs.build_args = {"A": "BC"}

    assert inputs.hash() != first


def test_input_hash_is_the_same_for_identical_inputs_in_another_place(tmp_path: Path) -> None:
    assert Inputs(tmp_path / "one").hash() == Inputs(tmp_path / "two").hash()


# -- ContextHasher: one walk per context and stage ------------------------------------------


def test_each_context_is_walked_once_per_stage_even_from_many_threads(tmp_path: Path) -> None:
    write(tmp_path / "ctx", {f"f{i}.txt": str(i) for i in range(50)})
    hasher = ContextHasher(None)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: hasher.files(tmp_path / "ctx"), range(16)))

    assert hasher.stats["walks"] == 1
    assert all(result == results[0] for result in results)
    assert len(results[0]) == 50


def test_other_ignore_rules_or_never_inputs_are_another_walk(tmp_path: Path) -> None:
    write(tmp_path / "ctx", {"a.txt": "a", "b.log": "b"})
    hasher = ContextHasher(None)

    assert set(hasher.files(tmp_path / "ctx")) == {"a.txt", "b.log"}
    assert set(hasher.files(tmp_path / "ctx", ("b.log",))) == {"a.txt"}
    (tmp_path / "ctx" / ".dockerignore").write_text("*.log\n")
    assert set(hasher.files(tmp_path / "ctx")) == {".dockerignore", "a.txt"}
    assert hasher.stats["walks"] == 3


# -- Selection: the files COPY/ADD sources take --------------------------------------------

REPO = {
    "src/api/app.py": "api",
    "src/api/sub/util.py": "util",
    "src/api/notes.tmp": "ignored",
    "src/worker/run.sh": "worker",
    "conf/a.yaml": "a",
    "conf/b.yaml": "b",
    "conf/readme.txt": "r",
    "conf/sub/c.yaml": "c",
    "k8s/deploy.yaml": "manifest",
    "README.md": "readme",
    ".dockerignore": "**/*.tmp\n",
}


@pytest.mark.parametrize(
    ("sources", "selected"),
    [
        # a directory takes everything below it (less what .dockerignore leaves out)
        (["src/api"], {"src/api/app.py", "src/api/sub/util.py"}),
        (["src/api/app.py"], {"src/api/app.py"}),
        # globs as Go's filepath.Match: * and ? within one path component
        (["conf/*.yaml"], {"conf/a.yaml", "conf/b.yaml"}),
        (["conf/?.yaml"], {"conf/a.yaml", "conf/b.yaml"}),
        (["conf/[^a].yaml"], {"conf/b.yaml"}),
        # a glob matching a directory takes what is below it
        (["src/*"], {"src/api/app.py", "src/api/sub/util.py", "src/worker/run.sh"}),
        (["*/sub"], {"conf/sub/c.yaml"}),  # not src/api/sub: * never spans a /
        (["README.md", "src/worker"], {"README.md", "src/worker/run.sh"}),
        (["src/api/missing"], set()),
        ([], set()),
    ],
)
def test_the_sources_select_what_docker_would_copy(
    tmp_path: Path, sources: list[str], selected: set[str]
) -> None:
    write(tmp_path, REPO)

    assert set(ContextHasher(None).files(tmp_path, sources=sources)) == selected
    assert set(ContextHasher(None).files(tmp_path)) == set(REPO) - {"src/api/notes.tmp"}  # no sources: all


def image_hash(context: Path, sources: list[str] | None, hasher: ContextHasher | None = None) -> str:
    dockerfile = context.parent / "Dockerfile"
    if not dockerfile.exists():
        dockerfile.write_text("FROM busybox\n")
    return collect_inputs(context, dockerfile, {}, {}, sources=sources, hasher=hasher).digest()


@pytest.mark.parametrize(
    ("edit", "changes"),
    [
        ("src/api/app.py", True),  # inside a copied folder
        ("src/api/sub/new.py", True),  # a new file inside it
        ("conf/a.yaml", True),  # a file a glob takes
        ("k8s/deploy.yaml", False),  # a manifest
        ("README.md", False),
        ("conf/readme.txt", False),  # beside the glob's files, not matched
        ("src/api/notes.tmp", False),  # inside the copied folder, but .dockerignore'd
        ("tests/test_api.py", False),  # a new folder
    ],
)
def test_only_an_edit_of_a_selected_file_changes_the_hash(tmp_path: Path, edit: str, changes: bool) -> None:
    context = tmp_path / "ctx"
    write(context, REPO)
    sources = ["src/api", "conf/*.yaml"]
    before, whole = image_hash(context, sources), image_hash(context, None)

    write(context, {edit: "edited"})

    assert (image_hash(context, sources) != before) is changes
    # the whole context (COPY . …) sees every edit Docker would send
    assert (image_hash(context, None) != whole) is (edit != "src/api/notes.tmp")


def test_a_dockerignore_change_counts_only_where_it_changes_the_selected_files(tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    write(context, REPO)
    sources = ["src/api"]
    before = image_hash(context, sources)

    write(context, {".dockerignore": "**/*.tmp\nk8s\n"})  # leaves out nothing that is copied
    assert image_hash(context, sources) == before
    write(context, {".dockerignore": "**/*.tmp\nsrc/api/sub\n"})  # leaves out a copied file
    assert image_hash(context, sources) != before
    write(context, {".dockerignore": ""})  # brings an ignored file back in
    assert set(ContextHasher(None).files(context, sources=sources)) == {
        "src/api/app.py",
        "src/api/sub/util.py",
        "src/api/notes.tmp",
    }


def test_a_reinclusion_inside_an_ignored_folder_is_selected(tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    write(context, {**REPO, ".dockerignore": "src\n!src/api/app.py\n"})

    assert set(ContextHasher(None).files(context, sources=["src/api"])) == {"src/api/app.py"}


def test_a_symlink_on_the_way_to_a_source_hashes_the_whole_context(tmp_path: Path) -> None:
    """Docker follows a symlink named by a source (or on its path) into what it points at."""
    context = tmp_path / "ctx"
    write(context, REPO)
    (context / "app").symlink_to("src/api")  # COPY app/ copies src/api's files
    (context / "lib").symlink_to("src")  # COPY lib/api copies them too

    for sources in (["app"], ["lib/api"], ["a*"]):
        assert set(ContextHasher(None).files(context, sources=sources)) == set(
            ContextHasher(None).files(context)
        )
    # a symlink below a copied folder is copied as a link: no reason to hash everything
    (context / "src" / "worker" / "link").symlink_to("../api")
    assert set(ContextHasher(None).files(context, sources=["src/worker"])) == {
        "src/worker/run.sh",
        "src/worker/link",
    }


def test_only_the_sources_subtrees_are_walked_and_read(tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    write(context, REPO)
    write(context, {f"data/{i}.bin": str(i) for i in range(20)})
    hasher = ContextHasher(None)

    hasher.files(context, sources=["src/api", "conf/*.yaml"])
    assert hasher.stats == {"walks": 2, "hashed": 4, "from_cache": 0}  # src/api and conf
    hasher.files(context, sources=["src/api/app.py", "conf/a.yaml"])  # inside walks already done
    assert hasher.stats == {"walks": 2, "hashed": 4, "from_cache": 0}
    hasher.files(context, sources=["data"])
    assert hasher.stats == {"walks": 3, "hashed": 24, "from_cache": 0}


# -- ContextHasher: the stat cache across runs -----------------------------------------------

LATER_NS = 10_000_000_000  # hashing that began 10 s after the files were written


def later() -> int:
    return time.time_ns() + LATER_NS


class Run:
    """Consecutive stages hashing one context through the cache in ``tmp_path``."""

    def __init__(self, tmp_path: Path) -> None:
        self.context = tmp_path / "ctx"
        self.cache = tmp_path / "artifacts" / CACHE_FILE
        write(self.context, {"a.txt": "aaaa", "b.txt": "bbbb", "sub/c.txt": "cccc", "dir/d.txt": "d"})
        (self.context / "link").symlink_to("a.txt")

    def files(self, **hasher_options: object) -> tuple[dict[str, str], ContextHasher]:
        hasher = ContextHasher(self.cache, **{"now_ns": later, **hasher_options})  # type: ignore[arg-type]
        files = hasher.files(self.context)
        hasher.save()
        return files, hasher

    def truth(self) -> dict[str, str]:
        """What a hasher without any cache sees."""
        return ContextHasher(None).files(self.context)


def _same_size_same_mtime(path: Path, text: str) -> None:
    info = path.stat()
    path.write_text(text)
    assert path.stat().st_size == info.st_size
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))  # as rsync -t, tar or cp -p leave it


def _replace_link(path: Path, target: str) -> None:
    path.unlink()
    path.symlink_to(target)


def _file_to_dir(path: Path) -> None:
    path.unlink()
    path.mkdir()
    (path / "inner.txt").write_text("aaaa")


def _dir_to_file(path: Path) -> None:
    shutil.rmtree(path)
    path.write_text("d")


CACHE_CHANGES: dict[str, Callable[[Path], object]] = {
    "content, same size, mtime restored": lambda c: _same_size_same_mtime(c / "a.txt", "AAAA"),
    "renamed": lambda c: (c / "b.txt").rename(c / "renamed.txt"),
    "renamed over another file": lambda c: (c / "b.txt").replace(c / "a.txt"),
    "executable bit": lambda c: (c / "a.txt").chmod(0o755),
    "symlink target": lambda c: _replace_link(c / "link", "b.txt"),
    "file replaced by a directory": lambda c: _file_to_dir(c / "a.txt"),
    "directory replaced by a file": lambda c: _dir_to_file(c / "dir"),
    "deleted": lambda c: (c / "sub" / "c.txt").unlink(),
    "new file": lambda c: (c / "sub" / "new.txt").write_text(""),
}


@pytest.mark.parametrize("change", CACHE_CHANGES)
def test_a_change_is_always_seen_through_the_cache(tmp_path: Path, change: str) -> None:
    run = Run(tmp_path)
    before, _ = run.files()
    _, warm = run.files()
    assert warm.stats["hashed"] == 0  # the cache is really in use before the change

    CACHE_CHANGES[change](run.context)
    after, _ = run.files()

    assert after == run.truth()
    assert after != before


def test_an_unchanged_context_costs_one_walk_and_no_reads(tmp_path: Path) -> None:
    run = Run(tmp_path)
    first, cold = run.files()
    assert cold.stats == {"walks": 1, "hashed": 5, "from_cache": 0}
    mtime = run.cache.stat().st_mtime_ns

    second, warm = run.files()

    assert second == first
    assert warm.stats == {"walks": 1, "hashed": 0, "from_cache": 5}
    assert run.cache.stat().st_mtime_ns == mtime  # nothing new: not rewritten


class CoarseClock:
    """A filesystem whose timestamps are one tick long: a rewrite within the tick leaves the
    stat exactly as it was (size, mtime, ctime, inode, mode)."""

    def __init__(self) -> None:
        self.frozen: dict[Path, os.stat_result] = {}

    def lstat(self, path: Path) -> os.stat_result:
        return self.frozen.setdefault(path, path.lstat())


def test_a_file_changed_just_before_hashing_is_not_trusted_from_the_cache(tmp_path: Path) -> None:
    """The racy-git case: same stat, new content, hashed in the tick of the change."""
    run = Run(tmp_path)
    coarse = CoarseClock()
    written = (run.context / "a.txt").stat().st_ctime_ns
    run.files(now_ns=lambda: written, lstat=coarse.lstat)  # hashing began in the same tick

    (run.context / "a.txt").write_text("AAAA")  # same size; on this filesystem, same stat
    after, hasher = run.files(now_ns=later, lstat=coarse.lstat)

    assert after == run.truth()
    assert hasher.stats["hashed"] == 5  # nothing was trusted


def test_a_file_changed_safely_before_hashing_is_trusted(tmp_path: Path) -> None:
    """The other side of the racy check, so that the test above can fail: with the same
    identical stat, an entry written long after the change is believed."""
    run = Run(tmp_path)
    coarse = CoarseClock()
    before, _ = run.files(now_ns=later, lstat=coarse.lstat)

    (run.context / "a.txt").write_text("AAAA")
    after, _ = run.files(now_ns=later, lstat=coarse.lstat)

    assert after["a.txt"] == before["a.txt"] != run.truth()["a.txt"]


def test_a_racy_entry_is_not_carried_over_by_a_stage_that_did_not_walk_its_context(
    tmp_path: Path,
) -> None:
    run = Run(tmp_path)
    write(tmp_path / "other", {"x.txt": "x"})
    coarse = CoarseClock()
    written = (run.context / "a.txt").stat().st_ctime_ns
    run.files(now_ns=lambda: written, lstat=coarse.lstat)  # racy entries of ctx
    other = ContextHasher(run.cache, now_ns=later)
    other.files(tmp_path / "other")  # a stage (--only) that walks another context
    other.save()

    (run.context / "a.txt").write_text("AAAA")
    after, _ = run.files(now_ns=later, lstat=coarse.lstat)

    assert after == run.truth()


def test_entries_of_contexts_not_walked_are_kept(tmp_path: Path) -> None:
    run = Run(tmp_path)
    write(tmp_path / "other", {"x.txt": "x"})
    run.files()
    other = ContextHasher(run.cache, now_ns=later)
    other.files(tmp_path / "other")
    other.save()

    _, warm = run.files()

    assert warm.stats["hashed"] == 0


def _cache_with_digest(run: Run, version: str, digest: str) -> None:
    """A cache file whose entry for a.txt matches its stat but carries ``digest``."""
    info = (run.context / "a.txt").lstat()
    signature = [info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_dev, info.st_mode]
    run.cache.parent.mkdir(parents=True, exist_ok=True)
    run.cache.write_text(
        json.dumps(
            {
                "version": version,
                "started_ns": later(),
                "entries": {os.fspath(run.context / "a.txt"): [*signature, digest]},
            }
        )
    )


def test_the_cache_file_is_what_it_seems(tmp_path: Path) -> None:
    """The format the next two tests forge: a matching entry is used as it stands."""
    run = Run(tmp_path)
    _cache_with_digest(run, f"{CACHE_VERSION}/{HASH_VERSION}", "f" * 64)

    files, _ = run.files()

    assert files["a.txt"] == "f" * 64


@pytest.mark.parametrize("version", ["999/1", f"{CACHE_VERSION}/999", None])
def test_a_cache_of_another_version_is_ignored(tmp_path: Path, version: str | None) -> None:
    run = Run(tmp_path)
    _cache_with_digest(run, version, "f" * 64)  # type: ignore[arg-type]

    files, _ = run.files()

    assert files == run.truth()


@pytest.mark.parametrize(
    "content",
    ["", "{not json", "[]", '{"version": "1/1"}', '{"version": "1/1", "started_ns": "x", "entries": {}}'],
)
def test_a_corrupt_cache_is_ignored_and_replaced(tmp_path: Path, content: str) -> None:
    run = Run(tmp_path)
    run.cache.parent.mkdir(parents=True)
    run.cache.write_text(content)

    files, _ = run.files()
    _, warm = run.files()

    assert files == run.truth()
    assert warm.stats["hashed"] == 0  # rewritten, and good again


def test_a_cache_that_cannot_be_written_is_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "artifacts").write_text("a file where the artifacts dir should be")
    run = Run(tmp_path)

    files, _ = run.files()

    assert files == run.truth()


def test_the_cache_is_written_whole_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    """(The write itself is stagegate.ledger.write_text_atomic, tested in test_ledger.py.)"""
    run = Run(tmp_path)
    run.files()
    (run.context / "a.txt").write_text("changed")
    run.files()

    assert json.loads(run.cache.read_text())["version"] == f"{CACHE_VERSION}/{HASH_VERSION}"
    assert [p.name for p in run.cache.parent.iterdir()] == [CACHE_FILE]
