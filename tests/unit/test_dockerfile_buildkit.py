"""stagegate.dockerfile beyond the basics: heredocs, parser directives, BuildKit's platform args,
images of ``COPY --from``/``RUN --mount=from``, ARG quoting, BOM, and what needs BuildKit."""

from __future__ import annotations

import pytest
from stagegate.dockerfile import Dockerfile, DockerfileSyntaxError, platform_args

HEREDOCS = """\
FROM busybox
RUN <<EOF
echo one
FROM not-an-instruction
EOF
COPY <<-CONF /etc/app.conf
\tkey=value
\tCONF
RUN <<A cat >/a && <<'B' cat >/b
a
A
$NOT_EXPANDED
B
CMD ["true"]
"""


def test_heredoc_bodies_belong_to_their_instruction_and_are_not_instructions() -> None:
    dockerfile = Dockerfile.parse(HEREDOCS)

    assert [(i.line, i.keyword) for i in dockerfile.instructions] == [
        (1, "FROM"),
        (2, "RUN"),
        (6, "COPY"),
        (9, "RUN"),
        (14, "CMD"),
    ]
    run, copy, two = dockerfile.instructions[1:4]
    assert run.heredocs == ("echo one\nFROM not-an-instruction\n",)
    assert copy.heredocs == ("key=value\n",)  # <<- strips the leading tabs
    assert two.heredocs == ("a\n", "$NOT_EXPANDED\n")
    assert [ref.ref for ref in dockerfile.image_refs({})] == ["busybox"]
    assert dockerfile.at_line(4).line == 2  # a line of the body maps to its instruction


def test_an_unterminated_heredoc_is_a_syntax_error_naming_its_line() -> None:
    with pytest.raises(DockerfileSyntaxError, match="line 2: heredoc 'EOF' is not terminated"):
        Dockerfile.parse("FROM busybox\nRUN <<EOF\necho hi\n")


def test_a_shift_in_a_run_command_is_no_heredoc() -> None:
    dockerfile = Dockerfile.parse("FROM busybox\nRUN echo $((1<<2))\nRUN true\n")

    assert [i.heredocs for i in dockerfile.instructions] == [(), (), ()]


def test_parser_directives_syntax_and_escape() -> None:
    text = "# syntax=docker/dockerfile:1.7\n# escape=`\nFROM busybox\nRUN echo a `\n    b\n"
    dockerfile = Dockerfile.parse(text)

    assert dockerfile.directives == {"syntax": (1, "docker/dockerfile:1.7"), "escape": (2, "`")}
    assert [(i.line, " ".join(i.arguments.split())) for i in dockerfile.instructions][1] == (4, "echo a b")


def test_a_directive_after_a_comment_is_a_comment() -> None:
    dockerfile = Dockerfile.parse("# a comment\n# syntax=docker/dockerfile:1\nFROM busybox\n")

    assert dockerfile.directives == {}
    assert dockerfile.buildkit_needs() == []


def test_the_syntax_directive_is_told_with_its_line() -> None:
    assert Dockerfile.parse("# syntax=docker/dockerfile:1\nFROM busybox\n").syntax_directive == (
        1,
        "# syntax=docker/dockerfile:1",
    )
    assert Dockerfile.parse(
        "# escape=`\n# syntax = docker/dockerfile:1.7\nFROM busybox\n"
    ).syntax_directive == (
        2,
        "# syntax=docker/dockerfile:1.7",
    )
    assert (
        Dockerfile.parse("# a comment\n# syntax=docker/dockerfile:1\nFROM busybox\n").syntax_directive is None
    )
    assert Dockerfile.parse("FROM busybox\n").syntax_directive is None


def test_a_byte_order_mark_is_dropped_before_directives() -> None:
    dockerfile = Dockerfile.parse("\ufeff# escape=`\nFROM busybox\n")

    assert dockerfile.directives == {"escape": (1, "`")}
    assert dockerfile.base_refs({})[0].ref == "busybox"


def test_platform_args() -> None:
    assert platform_args("linux/arm64/v8", "linux/amd64") == {
        "TARGETPLATFORM": "linux/arm64/v8",
        "TARGETOS": "linux",
        "TARGETARCH": "arm64",
        "TARGETVARIANT": "v8",
        "BUILDPLATFORM": "linux/amd64",
        "BUILDOS": "linux",
        "BUILDARCH": "amd64",
        "BUILDVARIANT": "",
    }


def test_platform_args_resolve_in_from_lines_and_declared_global_args() -> None:
    text = "ARG TARGETARCH\nARG BASE=busybox-${TARGETARCH}\nFROM ${BASE}\nFROM tools-$BUILDARCH\n"
    platform = platform_args("linux/arm64", "linux/amd64")

    assert [r.ref for r in Dockerfile.parse(text).base_refs({}, platform)] == ["busybox-arm64", "tools-amd64"]
    assert [r.ref for r in Dockerfile.parse(text).base_refs({"TARGETARCH": "s390x"}, platform)] == [
        "busybox-s390x",
        "tools-amd64",
    ]


def test_copy_from_and_mount_from_images_are_external_unless_a_stage() -> None:
    text = (
        "ARG TOOLS=example/tools:1\n"
        "FROM busybox AS build\n"
        "RUN --mount=type=bind,from=${TOOLS},target=/t --mount=type=cache,target=/c true\n"
        "FROM scratch\n"
        "COPY --from=build /a /a\n"
        "COPY --from=0 /b /b\n"
        "COPY --chown=1 --from=nginx:1.27 /etc/nginx /etc/nginx\n"
        "COPY --from=5 /c /c\n"
    )
    refs = Dockerfile.parse(text).image_refs({})

    assert [(r.line, r.instruction, r.ref, r.internal) for r in refs] == [
        (2, "FROM", "busybox", False),
        (3, "RUN --mount=from", "example/tools:1", False),
        (4, "FROM", "scratch", True),
        (5, "COPY --from", "build", True),
        (6, "COPY --from", "0", True),
        (7, "COPY --from", "nginx:1.27", False),
        (8, "COPY --from", "5", False),  # no stage 5: BuildKit takes it for an image name
    ]
    assert [r.ref for r in Dockerfile.parse(text).base_refs({})] == ["busybox", "scratch"]
    assert refs[1].configured_name(["example/tools"]) == "example/tools"


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("X=it\\'s", "it's"),
        ('X="a b"', "a b"),
        ("X='q\"r'", 'q"r'),
        ("X=a\\ b", "a b"),
        ('X="say \\"hi\\""', 'say "hi"'),
        ("X='$A'", "$A"),
        ('X="${A}-x"', "1-x"),
        ("X=$A$A", "11"),
    ],
)
def test_arg_values_follow_dockers_quoting(arg: str, expected: str) -> None:
    """The first four measured with ``docker build`` (legacy and BuildKit agree on each)."""
    assert Dockerfile.parse(f"ARG A=1\nARG {arg}\nFROM busybox\n").global_args()["X"] == expected


def test_an_unmatched_quote_in_an_arg_is_a_syntax_error_like_dockers() -> None:
    # Docker: failed to process "it's": unexpected end of statement while looking for matching single-quote
    with pytest.raises(DockerfileSyntaxError, match=r"line 2: failed to process \"X=it's\".*single-quote"):
        Dockerfile.parse("# c\nARG X=it's\nFROM busybox\n").global_args()


def test_an_unmatched_double_quote_is_named_too() -> None:
    with pytest.raises(DockerfileSyntaxError, match=r"line 1: .*double-quote"):
        Dockerfile.parse('ARG X="open\nFROM busybox\n').global_args()


def test_stage_names() -> None:
    text = "FROM busybox AS build\nFROM build as Test\nFROM scratch\n"

    assert Dockerfile.parse(text).stage_names == ["build", "Test"]


# -- what needs BuildKit -----------------------------------------------------------------------


def needs(text: str, build_args: dict[str, str] | None = None) -> list[tuple[int, str, bool]]:
    return [(n.line, n.what, n.frontend) for n in Dockerfile.parse(text).buildkit_needs(build_args)]


def test_a_plain_dockerfile_needs_nothing() -> None:
    assert needs("FROM busybox\nARG X=1\nCOPY --chown=1:1 --from=0 a /a\nRUN echo $X\n") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the legacy builder ignores a parser directive it does not know (as Docker documents)
        ("# syntax=docker/dockerfile:1\nFROM busybox\n", []),
        # …and still cannot build what needs BuildKit, syntax line or not
        (
            "# syntax=docker/dockerfile:1\nFROM busybox\nRUN --mount=type=cache,target=/c true\n",
            [(3, "RUN --mount", False)],
        ),
        ("# syntax=docker/dockerfile:1\nFROM busybox\nRUN <<EOF\ntrue\nEOF\n", [(3, "RUN <<", True)]),
        ("# syntax=docker/dockerfile:1.4\nFROM busybox\nCOPY --link a /a\n", [(3, "COPY --link", True)]),
        ("FROM busybox\nRUN --mount=type=cache,target=/c true\n", [(2, "RUN --mount", False)]),
        ("FROM busybox\nRUN --network=none true\n", [(2, "RUN --network", False)]),
        ("FROM busybox\nCOPY --chmod=755 a /a\n", [(2, "COPY --chmod", False)]),
        ("FROM busybox\nCOPY --link a /a\n", [(2, "COPY --link", True)]),
        ("FROM busybox\nRUN <<EOF\ntrue\nEOF\n", [(2, "RUN <<", True)]),
        ("FROM busybox\nARG TARGETARCH\nRUN echo ${TARGETARCH}\n", [(3, "TARGETARCH", False)]),
        ("FROM --platform=$BUILDPLATFORM busybox\n", [(1, "BUILDPLATFORM", False)]),
    ],
)
def test_what_needs_buildkit(text: str, expected: list[tuple[int, str, bool]]) -> None:
    assert needs(text) == expected


def test_a_platform_arg_given_as_a_build_arg_needs_no_buildkit() -> None:
    assert needs("FROM busybox\nARG TARGETARCH\nRUN echo $TARGETARCH\n", {"TARGETARCH": "amd64"}) == []
