"""junit.xml, GitHub annotations and the job summary, made from ledgers of three failures:
a build failure, an image pull error and an e2e failure."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from junitparser import Failure, JUnitXml, Skipped
from rich.console import Console
from stagegate.clock import Clock
from stagegate.errors import Code, CommandEvidence, StagegateError
from stagegate.ledger import PIPELINE, Ledger
from stagegate.reports import RunReport, github_annotation, markdown_summary, publish_to_github, write_junit
from stagegate.ui import Reporter

GOLDEN = Path(__file__).resolve().parent.parent / "fixtures" / "reports"
GIT = {"sha": "0123456789abcdef0123", "dirty": False}

FAILURES = {
    "build": StagegateError(
        Code.BUILD_FAILED,
        "example/api-server: `RUN exit 3` failed with exit code 3 at example/api/Dockerfile:7",
        "fix example/api/Dockerfile:7 (build context example/)",
        {"image": "example/api-server", "file": "example/api/Dockerfile", "line": 7, "exit_code": 3},
        command=CommandEvidence(["docker", "build", "example"], 3),
        log_excerpt="Step 6/9 : RUN exit 3\nThe command '/bin/sh -c exit 3' returned a non-zero code: 3",
        log_file=".stagegate/logs/build/example-api-server.log",
    ),
    "deploy": StagegateError(
        Code.IMAGE_PULL_ERROR,
        "pod api-server-0 (Deployment/api-server) container 'api-server': ErrImagePull — "
        "example/api-server:sg-1 was built by this run but not loaded onto the cluster's nodes",
        "run the cluster stage (it loads the images)",
        {
            "pod": "api-server-0",
            "container": "api-server",
            "reason": "ErrImagePull",
            "diagnostics": ".stagegate/diagnostics",
        },
    ),
    "e2e": StagegateError(
        Code.E2E_FAILED,
        "1 e2e test(s) failed: test_stack::test_health",
        "read the test output",
        {"failed_tests": ["test_stack::test_health"], "exit_code": 1},
        log_file=".stagegate/logs/e2e/tests.log",
    ),
}

E2E_JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="0" failures="1" skipped="0" tests="2" time="0.3">
<testcase classname="test_stack" name="test_health" time="0.1"><failure message="assert 503 == 200">boom</failure></testcase>
<testcase classname="test_stack" name="test_version" time="0.2"/>
</testsuite></testsuites>
"""


def ledger_failing_in(tmp_path: Path, failing: str) -> Path:
    """An artifacts dir whose run passed every stage before ``failing`` and failed there."""
    artifacts = tmp_path / "artifacts"
    moments = iter(
        datetime(2026, 11, 28, 20, 0, 0, tzinfo=UTC) + timedelta(seconds=7 * i) for i in range(100)
    )
    ledger = Ledger(artifacts, Clock(now=lambda: next(moments)))
    for stage in PIPELINE:
        ledger.begin(stage, git=GIT, options={})
        if stage == failing:
            ledger.record_failure(stage, FAILURES[stage], 4.2, {})
            break
        ledger.record_pass(stage, 3.0, {"builder": "legacy"} if stage == "preflight" else {})
    run = json.loads((artifacts / "run.json").read_text())
    run["run_id"] = "20261128T200000Z-abcdef"  # stable for the golden files
    (artifacts / "run.json").write_text(json.dumps(run))
    error = json.loads((artifacts / "error.json").read_text())
    error["run_id"] = run["run_id"]
    (artifacts / "error.json").write_text(json.dumps(error))
    if failing == "e2e":
        (artifacts / "e2e-junit.xml").write_text(E2E_JUNIT)
    return artifacts


def cases(path: Path) -> dict[str, list]:
    xml = JUnitXml.fromfile(str(path))
    return {case.name: case.result for suite in xml for case in suite}


def test_junit_has_a_case_per_stage_with_the_failure_and_the_skips(tmp_path: Path) -> None:
    report = RunReport.load(ledger_failing_in(tmp_path, "build"))
    found = cases(write_junit(report))
    assert list(found) == list(PIPELINE)
    assert found["preflight"] == []
    [failure] = found["build"]
    assert isinstance(failure, Failure) and failure.type == "BUILD_FAILED"
    assert "at example/api/Dockerfile:7" in failure.text
    assert "returned a non-zero code: 3" in failure.text
    for later in ("verify", "cluster", "deploy", "e2e"):
        [skip] = found[later]
        assert isinstance(skip, Skipped) and skip.message == "not run: upstream build failed"


def test_junit_merges_the_e2e_suites_cases(tmp_path: Path) -> None:
    found = cases(write_junit(RunReport.load(ledger_failing_in(tmp_path, "e2e"))))
    assert {"test_health", "test_version", "e2e"} <= set(found)
    assert isinstance(found["test_health"][0], Failure)
    assert found["test_version"] == []
    assert "test_stack::test_health" in found["e2e"][0].text


@pytest.mark.parametrize(
    ("stage", "annotation"),
    [
        (
            "build",
            "::error file=example/api/Dockerfile,line=7,title=BUILD_FAILED in build::example/api-server: "
            "`RUN exit 3` failed with exit code 3 at example/api/Dockerfile:7",
        ),
        ("deploy", "::error title=IMAGE_PULL_ERROR in deploy::pod api-server-0"),
        (
            "e2e",
            "::error title=E2E_FAILED in e2e::1 e2e test(s) failed: test_stack::test_health%0Aread the test output",
        ),
    ],
)
def test_annotations_point_at_the_file_and_line_when_known(
    tmp_path: Path, stage: str, annotation: str
) -> None:
    error = json.loads((ledger_failing_in(tmp_path, stage) / "error.json").read_text())
    assert github_annotation(error).startswith(annotation)


@pytest.mark.parametrize("stage", ["build", "deploy", "e2e"])
def test_job_summary_matches_the_golden_file(tmp_path: Path, stage: str) -> None:
    summary = markdown_summary(RunReport.load(ledger_failing_in(tmp_path, stage)))
    golden = GOLDEN / f"summary-{stage}.md"
    assert summary == golden.read_text(), f"compare with {golden}"


def test_github_publishing_updates_one_summary_section_and_annotates_once(tmp_path: Path) -> None:
    artifacts = ledger_failing_in(tmp_path, "build")
    summary_file = tmp_path / "step-summary.md"
    summary_file.write_text("# earlier step output\n")
    emitted: list[str] = []
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary_file)}
    publish_to_github(RunReport.load(artifacts), env, emitted.append)
    publish_to_github(RunReport.load(artifacts), env, emitted.append)
    text = summary_file.read_text()
    assert text.startswith("# earlier step output\n")
    assert text.count("## stagegate run") == 1
    assert len(emitted) == 2 and emitted[0].startswith("::error file=example/api/Dockerfile,line=7")


def test_nothing_is_published_outside_github_actions(tmp_path: Path) -> None:
    emitted: list[str] = []
    publish_to_github(RunReport.load(ledger_failing_in(tmp_path, "build")), {}, emitted.append)
    assert emitted == []


def test_report_renders_a_saved_artifacts_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from stagegate import cli

    artifacts = ledger_failing_in(tmp_path, "build")
    assert cli.report(tmp_path, [str(artifacts), "--markdown"]) is None
    out = capsys.readouterr()
    assert "BUILD_FAILED: example/api-server" in out.err  # the terminal summary
    assert "### ❌ `BUILD_FAILED` in build" in out.out  # the Markdown
    assert cli.report(tmp_path, [str(tmp_path / "nowhere")]).startswith("no run.json")


def test_terminal_summary_has_table_cause_hint_and_paths(tmp_path: Path) -> None:
    report = RunReport.load(ledger_failing_in(tmp_path, "deploy"))
    console = Console(file=io.StringIO(), width=200, force_terminal=False)
    Reporter(console).summary(report.run, report.error, report.artifacts)
    text = console.file.getvalue()
    assert "cluster   │ passed" in text and "deploy    │ failed" in text
    assert "✗ IMAGE_PULL_ERROR: pod api-server-0" in text
    assert "hint: run the cluster stage" in text
    assert ".stagegate/diagnostics/" in text


def test_no_color_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    from stagegate.ui import make_console

    monkeypatch.setenv("NO_COLOR", "1")
    assert make_console().no_color
    monkeypatch.delenv("NO_COLOR")
    assert not make_console().no_color


# -- reports never break ------------------------------------------------------------------------

HOSTILE = "\x1b[31mred\x1b[0m \x01bell\x07 \x1b]0;title\x07lone\ud800 \ufffe\uffff end"


@pytest.mark.parametrize(
    ("text", "clean"),
    [
        ("\x1b[1;31merror\x1b[0m: x", "error: x"),
        ("a\x01b\x00c\x08d\x0be\x0cf\x1fg", "abcdefg"),
        ("tab\tnl\ncr\r", "tab\tnl\ncr\r"),
        ("lone\ud800 surrogate\udfff", "lone surrogate"),
        ("\ufffe\uffffok", "ok"),
        ("\x1b]8;;https://x\x1b\\link\x1b]8;;\x1b\\", "link"),
        ("é 😀 ✓", "é 😀 ✓"),
    ],
)
def test_clean_text_strips_ansi_and_what_xml_cannot_hold(text: str, clean: str) -> None:
    from stagegate.reports import clean_text

    assert clean_text(text) == clean


def hostile_build_failure(tmp_path: Path) -> Path:
    """A build failure whose message, subject and log excerpt carry colour codes and controls."""
    artifacts = tmp_path / "artifacts"
    ledger = Ledger(artifacts)
    ledger.begin("preflight", git=GIT, options={})
    ledger.record_pass("preflight", 1.0, {})
    ledger.begin("build", git=GIT, options={})
    error = StagegateError(
        Code.BUILD_FAILED,
        f"app: `RUN x` failed {HOSTILE}",
        f"fix it {HOSTILE}",
        {"image": "app", "file": "app/Dockerfile", "line": 2, "reason": HOSTILE},
        log_excerpt=f"Step 2/2 : RUN x\n{HOSTILE}\nreturned a non-zero code: 3",
    )
    ledger.record_failure("build", error, 1.0, {})
    return artifacts


def assert_clean(text: str) -> None:
    for bad in ("\x1b", "\x01", "\x07", "\ud800", "\ufffe", "\uffff"):
        assert bad not in text, repr(bad)


def test_a_failure_full_of_escapes_still_gives_valid_reports(tmp_path: Path) -> None:
    import xml.dom.minidom

    artifacts = hostile_build_failure(tmp_path)
    report = RunReport.load(artifacts)
    path = write_junit(report)
    xml.dom.minidom.parse(str(path))  # well-formed XML
    [failure] = cases(path)["build"]
    assert failure.type == "BUILD_FAILED" and "red bell lone" in failure.text
    assert_clean(path.read_text())
    raw = json.loads((artifacts / "error.json").read_text())
    annotation = github_annotation(raw)
    assert annotation.startswith("::error file=app/Dockerfile,line=2,title=BUILD_FAILED in build::")
    assert_clean(annotation)
    assert_clean(markdown_summary(report))


@pytest.mark.parametrize(
    "broken",
    [
        '<?xml version="1.0"?><testsuites><testsuite name="pytest" tests="1"><testcase name="t"',
        "not xml at all \x01",
        '<testsuites><testsuite name="s"><testcase name="t" time="abc"/></testsuite></testsuites>',
        "<foo><bar/></foo>",
        "",
    ],
)
def test_a_broken_e2e_junit_file_is_an_errored_case_not_a_crash(tmp_path: Path, broken: str) -> None:
    artifacts = ledger_failing_in(tmp_path, "e2e")
    (artifacts / "e2e-junit.xml").write_text(broken)
    found = cases(write_junit(RunReport.load(artifacts)))
    assert list(found)[: len(PIPELINE)] == list(PIPELINE)
    [error] = found["e2e-junit.xml"]
    assert error.type == "UnreadableReport" and "could not read e2e-junit.xml" in error.message
    assert isinstance(found["e2e"][0], Failure)


def test_an_e2e_junit_whose_root_is_one_testsuite_is_merged(tmp_path: Path) -> None:
    artifacts = ledger_failing_in(tmp_path, "e2e")
    (artifacts / "e2e-junit.xml").write_text(
        '<?xml version="1.0"?><testsuite name="pytest" tests="2" failures="1">'
        '<testcase classname="t" name="test_one"><failure message="boom">x</failure></testcase>'
        '<testcase classname="t" name="test_two"/></testsuite>'
    )
    found = cases(write_junit(RunReport.load(artifacts)))
    assert isinstance(found["test_one"][0], Failure) and found["test_two"] == []
    assert "e2e-junit.xml" not in found


def test_an_unreadable_e2e_junit_is_one_errored_case_in_a_suite_named_e2e(tmp_path: Path) -> None:
    artifacts = ledger_failing_in(tmp_path, "e2e")
    (artifacts / "e2e-junit.xml").write_text("<foo><bar/></foo>")
    suites = {s.name: s for s in JUnitXml.fromfile(str(write_junit(RunReport.load(artifacts))))}
    [case] = list(suites["e2e"])
    assert case.name == "e2e-junit.xml" and case.classname == "stagegate.e2e"
    assert case.result[0].message == "could not read e2e-junit.xml: Invalid format."  # junitparser's words


def test_a_junit_that_cannot_be_written_is_a_warning_and_leaves_no_stale_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from stagegate.pipeline import publish_reports

    artifacts = ledger_failing_in(tmp_path, "build")
    write_junit(RunReport.load(artifacts))
    assert (artifacts / "junit.xml").exists()  # the report of an earlier stage
    (artifacts / ".junit.xml.tmp").mkdir()  # the next one cannot be written
    emitted: list[str] = []
    reporter = Reporter(Console(file=io.StringIO()))
    reporter.workflow_command = emitted.append  # type: ignore[method-assign]
    publish_reports("build", artifacts, {"GITHUB_ACTIONS": "true"}, reporter)
    assert not (artifacts / "junit.xml").exists()
    assert "could not write junit.xml" in caplog.text
    assert emitted and emitted[0].startswith("::error file=example/api/Dockerfile")  # still annotated
