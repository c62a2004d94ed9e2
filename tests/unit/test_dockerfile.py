"""stagegate.dockerfile: instructions with line numbers, global ARGs, FROM images."""

from __future__ import annotations

from pathlib import Path

import pytest
from stagegate.dockerfile import Dockerfile, DockerfileSyntaxError
from stagegate.references import repository

MULTI_LINE = """\
# syntax=docker/dockerfile:1
FROM python:3.12-slim

RUN apt-get update \\
    # a comment inside the continuation
    && apt-get install -y curl \\
    && rm -rf /var/lib/apt/lists/*
# a comment
COPY . /app
CMD ["python", "-m", "app"]
"""


def summary(dockerfile: Dockerfile) -> list[tuple[int, str, str]]:
    """(line, keyword, arguments with whitespace runs collapsed) of every instruction."""
    return [(i.line, i.keyword, " ".join(i.arguments.split())) for i in dockerfile.instructions]


def first_refs(text: str, build_args: dict[str, str] | None = None) -> list[str]:
    return [ref.ref for ref in Dockerfile.parse(text).base_refs(build_args or {})]


# -- instructions ----------------------------------------------------------------------------


def test_continuation_lines_keep_the_first_line_number_and_skip_comments() -> None:
    assert summary(Dockerfile.parse(MULTI_LINE)) == [
        (2, "FROM", "python:3.12-slim"),
        (4, "RUN", "apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*"),
        (9, "COPY", ". /app"),
        (10, "CMD", '["python", "-m", "app"]'),
    ]


def test_parse_keeps_the_path() -> None:
    assert Dockerfile.parse("FROM x\n", path=Path("a/Dockerfile")).path == Path("a/Dockerfile")


def test_lowercase_keywords_are_upper_cased() -> None:
    dockerfile = Dockerfile.parse("from busybox as base\nrun echo hi\n")

    assert summary(dockerfile) == [(1, "FROM", "busybox as base"), (2, "RUN", "echo hi")]
    assert dockerfile.base_refs({})[0].stage_alias == "base"


def test_instruction_text() -> None:
    instruction = Dockerfile.parse("run   echo hi\n").instructions[0]

    assert instruction.text == "RUN echo hi"


def test_escape_directive_changes_the_continuation_character() -> None:
    text = "# escape=`\nFROM mcr.microsoft.com/windows\nRUN dir C:\\\nRUN echo a `\n    && echo b\n"

    assert summary(Dockerfile.parse(text)) == [
        (2, "FROM", "mcr.microsoft.com/windows"),
        (3, "RUN", "dir C:\\"),
        (4, "RUN", "echo a && echo b"),
    ]


def test_escape_directive_after_an_instruction_is_only_a_comment() -> None:
    text = "FROM busybox\n# escape=`\nRUN echo a `\nRUN echo b \\\n    c\n"

    assert summary(Dockerfile.parse(text)) == [
        (1, "FROM", "busybox"),
        (3, "RUN", "echo a `"),
        (4, "RUN", "echo b c"),
    ]


def test_escape_directive_after_a_blank_line_is_only_a_comment() -> None:
    text = "\n# escape=`\nFROM busybox\nRUN echo a `\nRUN echo b\n"

    assert [i.line for i in Dockerfile.parse(text).instructions] == [3, 4, 5]


def test_continuation_at_end_of_file() -> None:
    assert summary(Dockerfile.parse("FROM x\nRUN echo a \\")) == [(1, "FROM", "x"), (2, "RUN", "echo a")]


def test_not_an_instruction_is_a_syntax_error() -> None:
    with pytest.raises(DockerfileSyntaxError, match="line 2"):
        Dockerfile.parse("FROM x\n&& echo\n")


def test_empty_line_inside_a_continuation_is_skipped() -> None:
    text = "FROM x\nRUN echo a \\\n\n    && echo b\nCMD c\n"

    assert summary(Dockerfile.parse(text)) == [
        (1, "FROM", "x"),
        (2, "RUN", "echo a && echo b"),
        (5, "CMD", "c"),
    ]


def test_continuation_joins_lines_as_docker_does() -> None:
    dockerfile = Dockerfile.parse("FROM x\nRUN echo foo\\\nbar\n")

    assert dockerfile.find("RUN echo foobar") is dockerfile.instructions[1]


# -- step, find, at_line -----------------------------------------------------------------------


@pytest.mark.parametrize(("number", "keyword"), [(1, "FROM"), (2, "RUN"), (3, "COPY"), (4, "CMD")])
def test_step(number: int, keyword: str) -> None:
    step = Dockerfile.parse(MULTI_LINE).step(number)

    assert step is not None and step.keyword == keyword


@pytest.mark.parametrize("number", [0, -1, 5])
def test_step_out_of_range(number: int) -> None:
    assert Dockerfile.parse(MULTI_LINE).step(number) is None


def test_find_is_whitespace_insensitive() -> None:
    dockerfile = Dockerfile.parse(MULTI_LINE)

    found = dockerfile.find("RUN apt-get update   &&  apt-get install -y curl && rm -rf /var/lib/apt/lists/*")

    assert found is dockerfile.instructions[1]
    assert dockerfile.find("  COPY   .   /app ") is dockerfile.instructions[2]


def test_find_without_a_match() -> None:
    dockerfile = Dockerfile.parse(MULTI_LINE)

    assert dockerfile.find("RUN apt-get update") is None
    assert dockerfile.find("COPY . /ap") is None


@pytest.mark.parametrize(
    ("line", "expected_line"),
    [(1, None), (2, 2), (3, 2), (4, 4), (5, 4), (6, 4), (7, 4), (8, 4), (9, 9), (10, 10), (99, 10)],
)
def test_at_line(line: int, expected_line: int | None) -> None:
    instruction = Dockerfile.parse(MULTI_LINE).at_line(line)

    assert (instruction.line if instruction else None) == expected_line


# -- global ARGs and FROM images ---------------------------------------------------------------


def test_global_args_are_those_before_the_first_from() -> None:
    text = 'ARG A=1 B\nARG C="x y"\nARG A=2\nFROM busybox\nARG D=4\n'

    assert Dockerfile.parse(text).global_args() == {"A": "2", "B": None, "C": "x y"}


@pytest.mark.parametrize(
    ("text", "build_args", "expected"),
    [
        ("ARG X=example/base\nFROM ${X}\n", {}, "example/base"),
        ("ARG X=example/base\nFROM $X\n", {}, "example/base"),
        ("ARG X\nFROM ${X:-example/base}\n", {}, "example/base"),
        ("ARG X=\nFROM ${X:-example/base}\n", {}, "example/base"),
        ("ARG X=set\nFROM ${X:-example/base}\n", {}, "set"),
        ("ARG X=busybox\nFROM ${X}\n", {"X": "example/base"}, "example/base"),
        ("ARG X\nFROM ${X}\n", {"X": "example/base"}, "example/base"),
        ("ARG TAG=1.2\nFROM example/base:${TAG}\n", {}, "example/base:1.2"),
        ("ARG TAG=1.2\nFROM example/base:$TAG\n", {"TAG": "2.0"}, "example/base:2.0"),
        ("ARG X=1\nFROM base${X:+-extra}\n", {}, "base-extra"),
        # a build arg not declared by a global ARG does not reach FROM
        ("FROM ${X:-busybox}\n", {"X": "example/base"}, "busybox"),
        ("FROM busybox\nARG X=example/base\nFROM ${X:-alpine}\n", {}, "alpine"),
    ],
)
def test_base_refs_resolve_arguments(text: str, build_args: dict[str, str], expected: str) -> None:
    assert first_refs(text, build_args)[-1] == expected


def test_base_ref_keeps_raw_and_line() -> None:
    ref = Dockerfile.parse("ARG X=example/base\n\nFROM ${X}:1 AS build\n").base_refs({})[0]

    assert (ref.line, ref.raw, ref.ref, ref.stage_alias) == (3, "${X}:1", "example/base:1", "build")


@pytest.mark.parametrize(
    ("build_args", "expected"),
    [
        ({}, "example/base"),
        ({"REGISTRY": "other"}, "other/base"),
        ({"BASE": "busybox"}, "busybox"),
    ],
)
def test_arg_defaults_refer_to_earlier_args(build_args: dict[str, str], expected: str) -> None:
    text = "ARG REGISTRY=example\nARG BASE=${REGISTRY}/base\nFROM ${BASE}\n"

    assert first_refs(text, build_args) == [expected]


def test_stage_aliases_scratch_and_platform() -> None:
    text = (
        "FROM --platform=$BUILDPLATFORM example/base:1 AS Builder\n"
        "FROM builder\n"
        "FROM scratch AS empty\n"
        "FROM empty\n"
        "FROM --platform=linux/amd64 busybox\n"
    )

    refs = Dockerfile.parse(text).base_refs({})

    assert [(r.ref, r.stage_alias, r.internal) for r in refs] == [
        ("example/base:1", "Builder", False),
        ("builder", None, True),
        ("scratch", "empty", True),
        ("empty", None, True),
        ("busybox", None, False),
    ]


def test_a_stage_alias_only_covers_later_from_lines() -> None:
    refs = Dockerfile.parse("FROM builder\nFROM busybox AS builder\n").base_refs({})

    assert [r.internal for r in refs] == [False, False]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("FROM example/base:1.0\n", ["example/base"]),
        ("FROM example/base@sha256:" + "0" * 64 + "\n", ["example/base"]),
        ("FROM example/basement\n", [None]),
        ("FROM example/base AS builder\nFROM builder\n", ["example/base", None]),
        ("FROM scratch\n", [None]),
    ],
)
def test_configured_name(text: str, expected: list[str | None]) -> None:
    refs = Dockerfile.parse(text).base_refs({})

    assert [r.configured_name(["example/base", "builder", "scratch"]) for r in refs] == expected


def test_from_without_an_image_is_a_syntax_error() -> None:
    with pytest.raises(DockerfileSyntaxError, match="line 2"):
        Dockerfile.parse("# c\nFROM --platform=linux/amd64\n").base_refs({})


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("busybox", "busybox"),
        ("python:3.12-slim", "python"),
        ("example/api-server:abc123", "example/api-server"),
        ("localhost:5000/team/app", "localhost:5000/team/app"),
        ("localhost:5000/team/app:1.0", "localhost:5000/team/app"),
        ("localhost:5000/app@sha256:" + "f" * 64, "localhost:5000/app"),
        ("localhost:5000/app:1.0@sha256:" + "f" * 64, "localhost:5000/app"),
        ("ghcr.io/org/img:latest", "ghcr.io/org/img"),
    ],
)
def test_repository(ref: str, expected: str) -> None:
    assert repository(ref) == expected


def test_image_refs_tell_an_unset_arg_from_an_empty_one() -> None:
    parsed = Dockerfile.parse(
        "ARG NODE_VERSION\nARG EMPTY=\nARG TARGETARCH\n"
        "FROM node:${NODE_VERSION}-slim\nFROM x:${EMPTY}\nFROM y:${Z:-1}$UNDECLARED\nFROM z-$TARGETARCH\n"
    )

    assert [ref.unset_args for ref in parsed.image_refs({})] == [("NODE_VERSION",), (), ("UNDECLARED",), ()]
    assert parsed.image_refs({"NODE_VERSION": "20"})[0].unset_args == ()
    assert parsed.image_refs({"NODE_VERSION": ""})[0].unset_args == ()  # set, to empty


# -- context_sources: what of the build context the image takes --------------------------------


@pytest.mark.parametrize(
    ("text", "patterns"),
    [
        ("FROM a\nCOPY src /app\n", ("src",)),
        ("FROM a\nCOPY ./src/ /app/\n", ("src",)),  # ./ and a trailing slash are the same path
        ("FROM a\nCOPY /src/main.py /app/\n", ("src/main.py",)),  # a leading / is the context root
        ("FROM a\nADD src/*.py lib/?.cfg /app/\n", ("src/*.py", "lib/?.cfg")),
        ('FROM a\nCOPY ["conf/[a-c].yaml", "b", "/etc/"]\n', ("conf/[a-c].yaml", "b")),
        ("FROM a\nCOPY --chown=1:1 --chmod=644 run.sh /bin/\n", ("run.sh",)),
        # not context sources: another stage or image, a URL, a git address, a heredoc
        ("FROM a AS b\nFROM c\nCOPY --from=b /x /y\nCOPY --from=alpine:3 /x /y\nCOPY app /app\n", ("app",)),
        ("FROM a\nADD https://example.com/x.tgz git@github.com:o/r.git /opt/\nADD app /app\n", ("app",)),
        ("FROM a\nCOPY <<EOF app /etc/\nhello\nEOF\n", ("app",)),
        # RUN mounts that do not take from the context
        ("FROM a\nRUN --mount=type=cache,target=/c --mount=type=secret,id=t true\nCOPY app /app\n", ("app",)),
        ("FROM a AS b\nFROM c\nRUN --mount=type=bind,from=b,target=/b true\nCOPY app /app\n", ("app",)),
        ("# syntax=docker/dockerfile:1.7\nFROM a\nCOPY app /app\n", ("app",)),
        ("FROM a\nRUN true\n", ()),  # takes nothing of the context
    ],
)
def test_context_sources_are_the_copy_and_add_sources(text: str, patterns: tuple[str, ...]) -> None:
    assert Dockerfile.parse(text).context_sources().patterns == patterns


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("FROM a\nCOPY . /app\n", 2),
        ("FROM a\nCOPY ./ /app\n", 2),
        ("FROM a\nCOPY / /app\n", 2),
        ("FROM a\nCOPY src/.. /app\n", 2),
        ("FROM a\nCOPY ../src /app\n", 2),
        ("FROM a\nARG SRC=src\nCOPY $SRC /app\n", 3),
        ("FROM a\nENV SRC=src\nCOPY ${SRC}/x /app\n", 3),
        ('FROM a\nCOPY "my src" /app\n', 2),
        ("FROM a\nCOPY src\\ x /app\n", 2),
        ('FROM a\nCOPY ["a  b", "/app"]\n', 2),  # whitespace inside a JSON source
        ("FROM a\nCOPY src/[a /app\n", 2),  # a glob Go calls malformed
        ("FROM a\nCOPY app /app\nRUN --mount=type=bind,target=/src make\n", 3),
        ("FROM a\nCOPY app /app\nRUN --mount=target=/src make\n", 3),  # bind is the default type
        ("FROM a\nCOPY app /app\nRUN --mount=type=bind,source=x,target=/x make\n", 3),
        ("FROM a\nCOPY --from= x /app\n", 2),
        ("# syntax=example.com/my/frontend:1\nFROM a\nCOPY app /app\n", 1),
    ],
)
def test_context_sources_fall_back_to_the_whole_context(text: str, line: int) -> None:
    sources = Dockerfile.parse(text).context_sources()
    assert sources.whole and sources.patterns is None
    assert sources.reason.startswith(f"line {line}: ")


STAGES = """\
ARG BASE=base
FROM alpine AS base
COPY common /common
FROM base AS api
COPY api /api
FROM base AS tools
COPY tools /tools
FROM alpine AS web
COPY --from=tools /tools /tools
COPY web /web
FROM ${BASE} AS worker
COPY worker /worker
"""


@pytest.mark.parametrize(
    ("target", "patterns"),
    [
        ("api", ("common", "api")),
        ("tools", ("common", "tools")),
        ("web", ("common", "tools", "web")),  # COPY --from=tools needs tools and its base
        ("worker", ("common", "worker")),  # FROM ${BASE}: a global ARG naming a stage
        (None, ("common", "worker")),  # no target: the last stage
    ],
)
def test_context_sources_are_those_of_the_stages_the_target_needs(
    target: str | None, patterns: tuple[str, ...]
) -> None:
    assert Dockerfile.parse(STAGES).context_sources({}, target).patterns == patterns


def test_a_stage_named_through_a_build_arg_is_followed() -> None:
    assert Dockerfile.parse(STAGES).context_sources({"BASE": "web"}, "worker").patterns == (
        "common",
        "tools",
        "web",
        "worker",
    )


def test_a_stage_reference_that_cannot_be_resolved_takes_every_stage() -> None:
    text = (
        "FROM alpine AS one\nCOPY one /one\nFROM alpine AS two\nARG S\nCOPY --from=$S /x /x\nCOPY two /two\n"
    )
    assert Dockerfile.parse(text).context_sources({}, "two").patterns == ("one", "two")
