"""The failing step's own last lines of output, found in outputs recorded from real builders, and
where they go: error.json's ``subject.output``, the terminal under the ``✗`` line, the reports.

``legacy-output.txt`` and ``buildkit-client-output.txt`` (tests/fixtures/build-output) come from
``Dockerfile.rec-output``: its failing ``RUN`` prints a line, a progress line rewritten by a carriage
return and a coloured compiler error on stderr, after an earlier step and beside a stage that print
lines of their own. They keep the builders' escapes and carriage returns, so they are read with
``newline=""``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console
from stagegate import redact
from stagegate.builder import (
    STEP_LINE_CHARS,
    STEP_OUTPUT_LINES,
    BuildFailure,
    failing_step_output,
    parse_build_failure,
)
from stagegate.config import load_config
from stagegate.dockerfile import Dockerfile
from stagegate.errors import Code, StagegateError
from stagegate.ledger import Ledger
from stagegate.reports import RunReport, github_annotation, markdown_summary, write_junit
from stagegate.stages.build_image import build_error
from stagegate.ui import Reporter

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "build-output"
COMPILER = "./app.go:15:17: cannot use x (variable of type int) as string value"
FAILING_STEP = ("go build ./...", "progress 100%", COMPILER)
OTHER_STEPS = ("other stage starts", "other stage line", "an earlier step of this stage")
RECORDED = ["legacy-output.txt", "buildkit-client-output.txt"]


def raw(name: str) -> str:
    """A recorded output as the builder gave it (carriage returns kept), without its header."""
    with (FIXTURES / name).open(newline="") as stream:
        return "".join(line for line in stream if not line.startswith("#fixture:"))


@pytest.fixture(autouse=True)
def _no_secrets_of_other_tests():
    redact.SECRETS.clear()
    yield
    redact.SECRETS.clear()


@pytest.mark.parametrize("name", RECORDED)
def test_the_failing_steps_lines_come_without_escapes_and_without_the_other_steps(name: str) -> None:
    output = raw(name)
    assert "\x1b[91m" in output and "progress 10%\r" in output  # what the builder really printed
    assert all(other in output for other in OTHER_STEPS)
    lines = failing_step_output(output)
    assert sorted(lines) == sorted(FAILING_STEP)  # the legacy builder may pass stderr on first
    assert not any(other in line for line in lines for other in OTHER_STEPS)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("legacy-copy.txt", ()),  # a COPY runs no command: the builder's reason says it all
        ("buildkit-client-copy.txt", ()),
        ("legacy-run.txt", ("building",)),
    ],
)
def test_a_step_that_ran_no_command_has_no_lines_and_one_that_did_has_them(
    name: str, expected: tuple[str, ...]
) -> None:
    assert failing_step_output(raw(name)) == expected


def test_only_the_last_lines_are_kept_and_a_long_line_is_cut() -> None:
    printed = [f"line {n}" for n in range(STEP_OUTPUT_LINES + 5)]
    exact, long = "e" * STEP_LINE_CHARS, "x" * (STEP_LINE_CHARS + 1)
    output = "\n".join(
        [
            "Step 2/2 : RUN make",
            " ---> Running in 0123abcd",
            *printed,
            "",
            exact,
            long,
            "The command 'make' …",
        ]
    )
    lines = failing_step_output(output)
    assert len(lines) == STEP_OUTPUT_LINES
    assert lines[-2:] == (exact, "x" * (STEP_LINE_CHARS - 1) + "…")
    assert lines[0] == printed[-(STEP_OUTPUT_LINES - 2)]
    assert "line 0" not in lines


def test_the_details_and_the_error_carry_them_cleaned(tmp_path: Path) -> None:
    details = parse_build_failure(
        raw("legacy-output.txt"), Dockerfile.parse((FIXTURES / "Dockerfile.rec-output").read_text())
    )
    assert (details.line, details.exit_code) == (6, 1) and sorted(details.output) == sorted(FAILING_STEP)
    assert details.reason.startswith("The command '/bin/sh -c echo") and "\x1b" not in details.reason
    root = tmp_path / "repo"
    (root / "app").mkdir(parents=True)
    (root / "app" / "Dockerfile").write_text((FIXTURES / "Dockerfile.rec-output").read_text())
    (root / "pyproject.toml").write_text(
        '[tool.stagegate]\n[[tool.stagegate.images]]\nname = "t/app"\ncontext = "app"\n'
    )
    config = load_config(root, {})
    log_file = config.artifacts / "logs" / "build" / "t-app.log"
    failed = build_error(
        config.images["t/app"],
        BuildFailure(["docker"], 1, raw("buildkit-client-output.txt")),
        config.relpath,
        log_file,
    )
    assert sorted(failed.subject["output"]) == sorted(FAILING_STEP)
    copy = build_error(
        config.images["t/app"],
        BuildFailure(["docker"], 1, raw("buildkit-client-copy.txt")),
        config.relpath,
        log_file,
    )
    assert "output" not in copy.subject


def summary_of(error: dict) -> str:
    reporter = Reporter(Console(file=io.StringIO(), width=200, force_terminal=False))
    run = {"run_id": "r", "stages": {"build": {"status": "failed", "duration_s": 1.0, "outputs": {}}}}
    reporter.summary(run, error, Path("."))
    return reporter.console.file.getvalue()


def test_the_terminal_shows_them_under_the_cross_line_redacted_and_without_escapes() -> None:
    redact.register("npm_FAKEtoken0123456789")
    error = {
        "code": "BUILD_FAILED",
        "message": "t/app: `RUN make` failed with exit code 1 at app/Dockerfile:6",
        "hint": "fix app/Dockerfile:6",
        "subject": {"output": ["token is npm_FAKEtoken0123456789", f"\x1b[91m{COMPILER}\x1b[0m"]},
        "log_file": None,
    }
    shown = summary_of(error).splitlines()
    cross = next(i for i, line in enumerate(shown) if line.startswith("✗ BUILD_FAILED"))
    assert shown[cross + 1 : cross + 4] == [
        "  │ token is <redacted>",
        f"  │ {COMPILER}",
        "  hint: fix app/Dockerfile:6",
    ]
    assert "\x1b" not in "\n".join(shown)


def test_an_error_without_output_shows_no_output_lines() -> None:
    shown = summary_of({"code": "BUILD_FAILED", "message": "m", "hint": "h", "subject": {}, "log_file": None})
    lines = shown.splitlines()
    cross = lines.index("✗ BUILD_FAILED: m")
    assert lines[cross + 1] == "  hint: h"
    assert not any(line.startswith("  │ ") for line in lines)


def failed_build_with_output(tmp_path: Path, output: list[str]) -> Path:
    """An artifacts dir whose build failed with ``output`` as the failing step's lines."""
    artifacts = tmp_path / "artifacts"
    ledger = Ledger(artifacts)
    ledger.begin("preflight", git={"sha": None, "dirty": None}, options={})
    ledger.record_pass("preflight", 1.0, {})
    ledger.begin("build", git={"sha": None, "dirty": None}, options={})
    error = StagegateError(
        Code.BUILD_FAILED,
        "t/app: `RUN go build` failed with exit code 1 at app/Dockerfile:6",
        "fix app/Dockerfile:6",
        {"image": "t/app", "file": "app/Dockerfile", "line": 6, "output": output},
    )
    ledger.record_failure("build", error, 1.0, {})
    return artifacts


def test_junit_the_annotation_and_the_summary_quote_the_lines_without_escapes(tmp_path: Path) -> None:
    artifacts = failed_build_with_output(
        tmp_path, ["go build ./...", f"\x1b[91m{COMPILER}\x1b[0m", "```fenced"]
    )
    report = RunReport.load(artifacts)
    junit = write_junit(report).read_text()
    annotation = github_annotation(json.loads((artifacts / "error.json").read_text()))
    summary = markdown_summary(report)
    for quoted in (junit, annotation, summary):
        assert COMPILER in quoted and "\x1b" not in quoted and "[91m" not in quoted
    assert annotation.endswith(
        f"at app/Dockerfile:6%0Ago build ./...%0A{COMPILER}%0A```fenced%0Afix app/Dockerfile:6"
        "%0Are-running will not help: fix app/Dockerfile:6"
    )
    assert (
        f"\n````\ngo build ./...\n{COMPILER}\n```fenced\n````\n" in summary
    )  # a fence the lines cannot close


def test_a_failure_without_lines_adds_nothing_to_the_reports(tmp_path: Path) -> None:
    artifacts = failed_build_with_output(tmp_path, [])
    report = RunReport.load(artifacts)
    annotation = github_annotation(json.loads((artifacts / "error.json").read_text()))
    assert annotation.endswith(
        "at app/Dockerfile:6%0Afix app/Dockerfile:6%0Are-running will not help: fix app/Dockerfile:6"
    )
    assert "last lines of output" not in (write_junit(report)).read_text()
    summary = markdown_summary(report)
    assert "at app/Dockerfile:6\n\n**Where:**" in summary
