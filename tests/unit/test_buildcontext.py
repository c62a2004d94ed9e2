"""stagegate.buildcontext: .dockerignore with Docker's matching rules, the walk of a context,
the entries COPY/ADD sources select, the paths that are never inputs."""

from __future__ import annotations

from pathlib import Path

import pytest
from stagegate.buildcontext import DockerIgnore, Selection, context_files, never_inputs, walk_context


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


def test_only_a_hash_in_the_first_column_starts_a_comment() -> None:
    # Docker reads "  # x" as the pattern "# x" (after trimming), not as a comment.
    ignore = DockerIgnore(["  # x"])
    assert ignore.excluded("# x")
    assert not ignore.excluded("x")


# -- never inputs: the artifacts dir and nox's environments ----------------------------------


def test_never_inputs_are_the_paths_inside_the_context(tmp_path: Path) -> None:
    root = tmp_path
    paths = [root / ".stagegate", root / ".nox", tmp_path.parent / "elsewhere"]

    assert never_inputs(root, paths) == (".nox", ".stagegate")
    assert never_inputs(root / "sub", paths) == ()
    assert never_inputs(root, [root / "build" / "sg"]) == ("build/sg",)
    assert never_inputs(root, [root]) == ()


def test_never_inputs_stay_out_whatever_dockerignore_says(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "Dockerfile": "FROM x\n",
            ".stagegate/run.json": "{}",
            ".stagegate/logs/build/a.log": "",
            ".nox/tests/bin/python": "",
            "build/sg/run.json": "",
            "keep/.stagegate": "not the artifacts dir",
            ".dockerignore": "!.stagegate/run.json\n",
        },
    )

    files = list(context_files(tmp_path, (".stagegate", ".nox", "build/sg")))

    assert files == [".dockerignore", "Dockerfile", "keep/.stagegate"]


# -- the walk's fast path matches Docker's rules ---------------------------------------------

TREE = [
    "a/b/c.txt",
    "a/b/c.log",
    "a/x.log",
    "docs/README.md",
    "docs/deep/more.md",
    "node_modules/p/index.js",
    "src/app.py",
    "src/x.pyc",
    "top.log",
]


@pytest.mark.parametrize(
    "patterns",
    [
        ["*.log"],
        ["**/*.log", "node_modules"],
        ["a/*", "docs/**/*.md"],
        ["a", "!a/b/c.txt"],
        ["**/*.md", "!docs/README.md", "src/*.pyc"],
        ["*", "!src"],
    ],
)
def test_the_walk_lists_exactly_what_the_rules_keep(tmp_path: Path, patterns: list[str]) -> None:
    write(tmp_path, dict.fromkeys(TREE, ""))
    ignore = DockerIgnore(patterns)

    walked = [relpath for relpath, _ in walk_context(tmp_path, ignore)]

    assert walked == sorted(p for p in TREE if not ignore.excluded(p))


# -- Selection: the files COPY/ADD sources take --------------------------------------------


def test_selection_matches_paths_and_what_lies_below_them() -> None:
    selection = Selection(["src/api", "conf/*.yaml"])
    assert selection.roots == ("conf", "src/api")
    assert selection.selects("src/api") and selection.selects("src/api/x/y.py")
    assert not selection.selects("src/apix/y.py") and not selection.selects("src")
    assert selection.selects("conf/a.yaml") and not selection.selects("conf/sub/a.yaml")
    assert selection.reaches("src") and selection.reaches("src/api") and not selection.reaches("src/api/x")
