"""tasks.hashing: .dockerignore with Docker's matching rules, context files, input hashes."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tasks.hashing import DockerIgnore, context_files, file_digest, input_hash


def write(root: Path, files: dict[str, str]) -> None:
    for relpath, text in files.items():
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


# -- DockerIgnore ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patterns", "path", "excluded"),
    [
        # relative to the context root
        (["foo"], "foo", True),
        (["foo"], "a/foo", False),
        (["foo"], "foobar", False),
        (["a/foo"], "a/foo", True),
        (["a/foo"], "b/a/foo", False),
        # a leading slash is stripped, a trailing one too
        (["/foo"], "foo", True),
        (["/foo"], "a/foo", False),
        (["foo/"], "foo/x", True),
        (["./foo"], "foo", True),
        # * and ? stay within one path component
        (["*.pyc"], "x.pyc", True),
        (["*.pyc"], "sub/x.pyc", False),
        (["*/*.pyc"], "sub/x.pyc", True),
        (["*/*.pyc"], "a/b/x.pyc", False),
        (["?.txt"], "a.txt", True),
        (["?.txt"], "ab.txt", False),
        (["a?b"], "a/b", False),
        # ** spans any number of components, including none
        (["**/x"], "x", True),
        (["**/x"], "a/x", True),
        (["**/x"], "a/b/x", True),
        (["**/x"], "a/bx", False),
        (["**/*.log"], "deep/er/app.log", True),
        (["a/**/z"], "a/z", True),
        (["a/**/z"], "a/b/c/z", True),
        (["a/**"], "a/b/c", True),
        (["a/**"], "b/a/c", False),
        # a pattern matching a directory excludes everything below it
        (["build"], "build/out/app.bin", True),
        (["a/*"], "a/b/c", True),
        # character classes
        (["[ab].txt"], "a.txt", True),
        (["[ab].txt"], "c.txt", False),
        (["[!a].txt"], "a.txt", False),
        (["[!a].txt"], "b.txt", True),
        (["[^a].txt"], "b.txt", True),
        (["file[0-9]"], "file7", True),
        # a backslash escapes the next character
        (["\\*.txt"], "*.txt", True),
        (["\\*.txt"], "a.txt", False),
        # ! re-includes, the last matching pattern wins
        (["*", "!keep"], "keep", False),
        (["*", "!keep"], "other", True),
        (["!keep", "*"], "keep", True),
        (["docs", "!docs/README.md"], "docs/README.md", False),
        (["docs", "!docs/README.md"], "docs/other.md", True),
        (["docs", "!docs/README.md", "docs/*.md"], "docs/README.md", True),
        (["**/*.md", "! README.md"], "README.md", False),
        # comments and blank lines are not patterns
        (["#foo"], "#foo", False),
        (["", "   ", "# *"], "anything", False),
        # a pattern that is only the root is ignored
        (["."], "anything", False),
        (["/"], "anything", False),
    ],
)
def test_dockerignore_matching(patterns: list[str], path: str, excluded: bool) -> None:
    assert DockerIgnore(patterns).excluded(path) is excluded


def test_has_exclusions() -> None:
    assert DockerIgnore(["*", "!keep"]).has_exclusions
    assert not DockerIgnore(["*", "# !keep"]).has_exclusions


def test_for_context_reads_the_dockerignore_file(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text("# secrets\nsecret.txt\n")

    assert DockerIgnore.for_context(tmp_path).excluded("secret.txt")
    assert not DockerIgnore.for_context(tmp_path / "missing").excluded("secret.txt")


# -- context_files -----------------------------------------------------------------------------

CONTEXT = {
    "Dockerfile": "FROM busybox\n",
    "app.py": "print()\n",
    "x.pyc": "",
    "sub/mod.py": "",
    "sub/x.pyc": "",
    "build/out.bin": "",
    "build/deep/more.bin": "",
    "notes/a.md": "",
}


def test_context_files_without_dockerignore_lists_everything_sorted(tmp_path: Path) -> None:
    write(tmp_path, CONTEXT)

    assert list(context_files(tmp_path)) == sorted(CONTEXT)


def test_context_files_honours_dockerignore(tmp_path: Path) -> None:
    write(tmp_path, {**CONTEXT, ".dockerignore": "*.pyc\nbuild\n/notes\n"})

    assert list(context_files(tmp_path)) == [
        ".dockerignore",
        "Dockerfile",
        "app.py",
        "sub/mod.py",
        "sub/x.pyc",
    ]


def test_context_files_with_reinclusion_inside_an_excluded_dir(tmp_path: Path) -> None:
    write(tmp_path, {**CONTEXT, ".dockerignore": "build\n!build/deep/more.bin\n*.pyc\n.dockerignore\n"})

    assert list(context_files(tmp_path)) == [
        "Dockerfile",
        "app.py",
        "build/deep/more.bin",
        "notes/a.md",
        "sub/mod.py",
        "sub/x.pyc",
    ]


def test_context_files_lists_a_directory_symlink_without_following_it(tmp_path: Path) -> None:
    write(tmp_path, {"Dockerfile": "FROM x\n", "real/file.txt": ""})
    (tmp_path / "linked").symlink_to(tmp_path / "real", target_is_directory=True)
    (tmp_path / "file-link").symlink_to("Dockerfile")

    assert list(context_files(tmp_path)) == ["Dockerfile", "file-link", "linked", "real/file.txt"]


def test_context_files_excludes_an_ignored_directory_symlink(tmp_path: Path) -> None:
    write(
        tmp_path, {"Dockerfile": "FROM x\n", "real/file.txt": "", ".dockerignore": "linked\n.dockerignore\n"}
    )
    (tmp_path / "linked").symlink_to(tmp_path / "real", target_is_directory=True)

    assert list(context_files(tmp_path)) == ["Dockerfile", "real/file.txt"]


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


# -- input_hash --------------------------------------------------------------------------------


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
        return input_hash(self.context, self.dockerfile, self.build_args, self.base_image_ids)


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


def test_only_a_hash_in_the_first_column_starts_a_comment() -> None:
    # Docker reads "  # x" as the pattern "# x" (after trimming), not as a comment.
    ignore = DockerIgnore(["  # x"])
    assert ignore.excluded("# x")
    assert not ignore.excluded("x")
