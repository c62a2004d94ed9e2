"""junit.xml's stage cases, the Markdown job summary and the GitHub step summary file, made
from run records of the shape the ledger writes (run.json / error.json), hand-written here
to reach the states a three-stage ledger fixture does not (interrupted, skipped, running
stages, a dirty checkout, further failures, ...). test_reports.py has the golden files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from junitparser import Failure, JUnitXml, Skipped
from stagegate.errors import Code, StagegateError
from stagegate.ledger import Ledger
from stagegate.reports import (
    SUMMARY_END,
    SUMMARY_START,
    RunReport,
    github_annotation,
    markdown_summary,
    mermaid_timeline,
    publish_to_github,
    update_summary,
    write_junit,
)

RUN_ID = "20261128T200000Z-abcdef"


def stage(status: str, duration: float | None = 3.0, started: str | None = "2026-11-28T20:00:07Z") -> dict:
    record: dict[str, Any] = {"status": status}
    if duration is not None:
        record["duration_s"] = duration
    if started is not None:
        record["started_at"] = started
    return record


def report(tmp_path: Path, stages: dict[str, dict], error: dict | None = None, **run: Any) -> RunReport:
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir(exist_ok=True)
    return RunReport(artifacts, {"run_id": RUN_ID, "stages": stages, **run}, error)


def deploy_error(**extra: Any) -> dict[str, Any]:
    return {
        "run_id": RUN_ID,
        "stage": "deploy",
        "code": "POD_FAILED",
        "message": "pod api-0 (Job/migrate) container 'migrate' ended: Error, exit code 1",
        "hint": "read its log (error.json has the last lines)",
        "subject": {
            "pod": "api-0",
            "container": "migrate",
            "reason": "Error",
            "exit_code": 1,
            "resource": "Job/migrate",
        },
        **extra,
    }


# -- junit.xml --------------------------------------------------------------------------------


def suites(path: Path) -> dict[str, Any]:
    return {suite.name: suite for suite in JUnitXml.fromfile(str(path))}


def test_each_stage_is_a_timed_case_of_the_stagegate_suite(tmp_path: Path) -> None:
    stages = {
        "preflight": stage("passed", 1.5),
        "build": stage("passed", None),
        "verify": stage("passed", "n/a"),
    }  # type: ignore[arg-type]
    path = write_junit(report(tmp_path, stages))
    assert path == tmp_path / "artifacts" / "junit.xml"
    assert not (tmp_path / "artifacts" / ".junit.xml.tmp").exists()
    xml = JUnitXml.fromfile(str(path))
    assert xml.name == "stagegate"
    [suite] = list(xml)
    assert suite.name == "stagegate" and suite.tests == 3 and suite.failures == 0
    found = {case.name: case for case in suite}
    assert [c.classname for c in found.values()] == ["stagegate.stages"] * 3
    assert [found[s].time for s in stages] == [1.5, 0.0, 0.0]  # no or unreadable duration: 0
    assert all(case.result == [] for case in found.values())


@pytest.mark.parametrize("status", ["failed", "interrupted"])
def test_the_stage_of_the_error_fails_with_its_code_message_and_details(tmp_path: Path, status: str) -> None:
    error = deploy_error(
        log_file=".stagegate/logs/deploy/migrate.log", log_excerpt="Traceback\nValueError: x"
    )
    stages = {"cluster": stage("passed"), "deploy": stage(status), "e2e": stage("not-run")}
    suite = suites(write_junit(report(tmp_path, stages, error)))["stagegate"]
    found = {case.name: case.result for case in suite}
    [failure] = found["deploy"]
    assert isinstance(failure, Failure)
    assert failure.type == "POD_FAILED"
    assert (
        failure.message == "POD_FAILED: pod api-0 (Job/migrate) container 'migrate' ended: Error, exit code 1"
    )
    assert failure.text == "\n".join(
        [
            "POD_FAILED: pod api-0 (Job/migrate) container 'migrate' ended: Error, exit code 1",
            "hint: read its log (error.json has the last lines)",
            "re-running will not help: the same inputs fail the same way",
            "pod: api-0",
            "container: migrate",
            "reason: Error",
            "exit_code: 1",
            "log: .stagegate/logs/deploy/migrate.log",
            "",
            "Traceback\nValueError: x",
        ]
    )
    [skip] = found["e2e"]
    assert isinstance(skip, Skipped) and skip.message == "not run: upstream deploy failed"
    assert (suite.tests, suite.failures, suite.skipped) == (3, 1, 1)


def test_a_failure_text_has_the_file_and_line_and_only_the_details_known(tmp_path: Path) -> None:
    error = {
        "run_id": RUN_ID,
        "stage": "build",
        "code": "BUILD_FAILED",
        "message": "m",
        "subject": {"file": "app/Dockerfile", "image": "app", "failed_tests": ["t"], "diagnostics": "d"},
    }
    [failure] = {
        c.name: c.result
        for c in suites(write_junit(report(tmp_path, {"build": stage("failed")}, error)))["stagegate"]
    }["build"]
    assert failure.text == (
        "BUILD_FAILED: m\nat app/Dockerfile\nre-running will not help: fix app/Dockerfile\n"
        "image: app\nfailed_tests: ['t']"
    )


def test_a_failed_stage_that_is_not_the_errors_says_its_status(tmp_path: Path) -> None:
    error = deploy_error()
    stages = {"build": stage("interrupted"), "verify": stage("failed"), "deploy": stage("failed")}
    found = {c.name: c.result for c in suites(write_junit(report(tmp_path, stages, error)))["stagegate"]}
    assert [(r.message, r.type) for r in found["build"]] == [("build interrupted", "interrupted")]
    assert [(r.message, r.type) for r in found["verify"]] == [("verify failed", "failed")]
    assert found["deploy"][0].type == "POD_FAILED"


def test_stages_not_run_in_a_run_without_error_and_skipped_stages_are_skipped(tmp_path: Path) -> None:
    stages = {
        "preflight": stage("passed"),
        "build": stage("running"),
        "verify": stage("not-run"),
        "e2e": stage("skipped"),
    }
    found = {c.name: c.result for c in suites(write_junit(report(tmp_path, stages)))["stagegate"]}
    assert found["preflight"] == []
    for name, message in (
        ("build", "not run in this run"),
        ("verify", "not run in this run"),
        ("e2e", "skipped"),
    ):
        [skip] = found[name]
        assert isinstance(skip, Skipped) and skip.message == message, name


def test_a_junit_that_cannot_be_written_removes_the_previous_one_and_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = report(tmp_path, {"build": stage("passed")})
    write_junit(run)
    (run.artifacts / ".junit.xml.tmp").mkdir()  # the write lands on a directory, which unlink cannot remove
    with pytest.raises(OSError):
        write_junit(run)
    assert not (run.artifacts / "junit.xml").exists()
    [warning] = caplog.messages
    assert warning.startswith(f"{run.artifacts / '.junit.xml.tmp'} is left from an earlier stage")
    assert warning.endswith(
        "could not be removed: [Errno 21] Is a directory: " + repr(str(run.artifacts / ".junit.xml.tmp"))
    )


def test_a_first_junit_that_cannot_be_written_warns_only_about_what_is_left(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = report(tmp_path, {"build": stage("passed")})
    (run.artifacts / ".junit.xml.tmp").mkdir()
    with pytest.raises(OSError):
        write_junit(run)
    [warning] = caplog.messages  # about the temp dir; no junit.xml was there to remove
    assert ".junit.xml.tmp is left from an earlier stage" in warning


def test_junit_xml_is_indented_one_element_a_line_for_people_reading_it(tmp_path: Path) -> None:
    text = write_junit(report(tmp_path, {"build": stage("passed")})).read_text()
    assert "\n\t<testsuite " in text and "\n\t\t<testcase " in text


def test_an_e2e_junit_too_deep_to_write_leaves_the_stages_cases_and_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = report(tmp_path, {"build": stage("passed"), "e2e": stage("failed")})
    deep = "<x>" * 5000 + "</x>" * 5000  # parses (expat), but serialising it recurses past Python's limit
    (run.artifacts / "e2e-junit.xml").write_text(
        '<testsuites><testsuite name="pytest"><testcase classname="t" name="test_deep">'
        f"<system-out>{deep}</system-out></testcase></testsuite></testsuites>"
    )
    path = write_junit(run)
    xml = JUnitXml.fromfile(str(path))
    assert xml.name == "stagegate" and "\n\t\t<testcase " in path.read_text()  # the same report, stages only
    [suite] = list(xml)
    assert suite.name == "stagegate" and [case.name for case in suite] == ["build", "e2e"]
    [warning] = caplog.messages
    assert warning.startswith("junit.xml without the e2e suite's cases: maximum recursion depth exceeded")
    assert not (run.artifacts / ".junit.xml.tmp").exists()


def test_a_run_report_ignores_the_error_file_of_another_run(tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    assert RunReport.load(artifacts) is None  # no run.json: no report
    ledger = Ledger(artifacts)
    ledger.begin("preflight", git={"sha": "0" * 40, "dirty": False}, options={})
    ledger.record_failure(
        "preflight", StagegateError(Code.TOOL_MISSING, "kubectl not found", "install it"), 0.1, {}
    )
    assert RunReport.load(artifacts).failed_stage() == "preflight"
    run = json.loads((artifacts / "run.json").read_text())
    (artifacts / "run.json").write_text(json.dumps({**run, "run_id": "a-newer-run"}))
    loaded = RunReport.load(artifacts)
    assert loaded is not None and loaded.error is None and loaded.failed_stage() is None


# -- the Markdown summary ---------------------------------------------------------------------


def test_the_summary_gives_target_builder_and_a_dirty_checkouts_short_sha(tmp_path: Path) -> None:
    git = {"sha": "0123456789abcdef0123", "dirty": True}
    summary = markdown_summary(report(tmp_path, {}, target="kind", builder="buildkit", git=git))
    assert summary.startswith(f"{SUMMARY_START}\n## stagegate run `{RUN_ID}`\n\n")
    assert "\ntarget: `kind` · builder: `buildkit` · git: `0123456789ab` (dirty)\n" in summary
    assert summary.endswith(f"{SUMMARY_END}\n")


def test_the_summary_of_a_run_without_git_facts_says_unknown(tmp_path: Path) -> None:
    summary = markdown_summary(report(tmp_path, {}))
    assert "\ngit: `unknown`\n" in summary and "(dirty)" not in summary
    assert "### Timeline" not in summary and "###" not in summary  # no stage ran, no error


def test_each_stage_row_has_its_status_icon_and_duration(tmp_path: Path) -> None:
    stages = {
        "preflight": stage("passed", 0.04),
        "build": stage("interrupted", 12.25),
        "verify": stage("skipped", None),
        "cluster": stage("running", None),
        "deploy": stage("not-run", None),
        "e2e": stage("failed", 1.0),
        "extra": stage("weird", None),
    }
    lines = markdown_summary(report(tmp_path, stages)).splitlines()
    start = lines.index("| stage | status | duration |")
    assert lines[start + 1 : start + 9] == [
        "|---|---|---|",
        "| preflight | ✅ passed | 0.0 s |",
        "| build | ⛔ interrupted | 12.2 s |",
        "| verify | ⏭️ skipped |  |",
        "| cluster | ⏳ running |  |",
        "| deploy | ⬜ not-run |  |",
        "| e2e | ❌ failed | 1.0 s |",
        "| extra |  weird |  |",
    ]


def test_a_stage_without_status_is_shown_as_unknown(tmp_path: Path) -> None:
    assert "| build |  ? |  |" in markdown_summary(report(tmp_path, {"build": {}}))


def test_the_error_section_has_where_hint_files_log_and_the_other_failures(tmp_path: Path) -> None:
    error = {
        "run_id": RUN_ID,
        "stage": "verify",
        "code": "IMAGE_STALE",
        "message": "app is older than its Dockerfile",
        "hint": "build again",
        "subject": {"file": "app/Dockerfile", "line": 4, "diagnostics": ".stagegate/diagnostics"},
        "log_file": ".stagegate/logs/verify.log",
        "log_excerpt": "x" * 10 + "y" * 3000,
        "others": [
            {"code": "SMOKE_FAILED", "message": "db exited 1"},
            {"code": "IMAGE_MISSING", "message": "no web"},
        ],
    }
    summary = markdown_summary(report(tmp_path, {"verify": stage("failed")}, error))
    section = summary[summary.index("### ❌") :].splitlines()
    assert section[:13] == [
        "### ❌ `IMAGE_STALE` in verify",
        "",
        "app is older than its Dockerfile",
        "",
        "**Where:** `app/Dockerfile:4`  ",
        "**Hint:** build again  ",
        "**Re-run:** a re-run may pass: app is older than its Dockerfile  ",
        "**Files:** `artifacts/error.json`, `.stagegate/logs/verify.log`, `.stagegate/diagnostics/` (in the uploaded artifacts)",
        "",
        "<details><summary>log excerpt</summary>",
        "",
        "```",
        "y" * 3000,  # the last 3000 characters
    ]
    assert section[13:18] == [
        "```",
        "",
        "</details>",
        "- also `SMOKE_FAILED`: db exited 1",
        "- also `IMAGE_MISSING`: no web",
    ]


def test_an_error_without_location_hint_or_log_names_only_error_json(tmp_path: Path) -> None:
    error = {"run_id": RUN_ID, "stage": "deploy", "code": "APPLY_FAILED", "message": "m", "subject": {}}
    summary = markdown_summary(report(tmp_path, {"deploy": stage("failed")}, error))
    assert "**Where:**" not in summary and "**Hint:**" not in summary and "<details>" not in summary
    assert "\n**Files:** `artifacts/error.json` (in the uploaded artifacts)\n" in summary


def test_a_location_without_line_is_the_file_alone(tmp_path: Path) -> None:
    error = {
        "run_id": RUN_ID,
        "stage": "build",
        "code": "BUILD_FAILED",
        "message": "m",
        "subject": {"file": "Dockerfile", "line": 0},
    }
    assert "**Where:** `Dockerfile`  " in markdown_summary(report(tmp_path, {}, error))


def test_the_summary_quotes_nothing_a_terminal_or_xml_would_choke_on(tmp_path: Path) -> None:
    error = {**deploy_error(), "message": "\x1b[31mred\x1b[0m\x01 text", "log_excerpt": "\x1b[1mbold\x1b[0m"}
    summary = markdown_summary(report(tmp_path, {"deploy": stage("failed")}, error))
    assert "\nred text\n" in summary and "\nbold\n" in summary and "\x1b" not in summary


def test_the_timeline_marks_failures_critical_passes_done_and_rounds_to_whole_seconds(tmp_path: Path) -> None:
    stages = {
        "preflight": stage("passed", 0.2, "2026-11-28T20:00:00Z"),
        "build": stage("failed", 61.6, "2026-11-28T20:00:01Z"),
        "verify": stage("interrupted", 2.4, "2026-11-28T20:01:03Z"),
        "cluster": stage("skipped", 1.0, "2026-11-28T20:01:06Z"),
        "deploy": stage("not-run", None, None),
        "e2e": stage("passed", 5.0, "2026-11-28T20:01:07Z"),  # after a stage that did not run
    }
    assert mermaid_timeline(report(tmp_path, stages)) == "\n".join(
        [
            "gantt",
            "    title stagegate stages",
            "    dateFormat HH:mm:ss",
            "    axisFormat %H:%M:%S",
            "    section run",
            "    preflight : done, 20:00:00, 1s",  # never less than a second
            "    build : crit, 20:00:01, 62s",
            "    verify : crit, 20:01:03, 2s",
            "    cluster : 20:01:06, 1s",
            "    e2e : done, 20:01:07, 5s",
        ]
    )
    summary = markdown_summary(report(tmp_path, stages))
    assert "\n### Timeline\n\n```mermaid\ngantt\n" in summary


def test_no_stage_with_a_start_and_a_duration_means_no_timeline(tmp_path: Path) -> None:
    stages = {"build": stage("passed", 3.0, None), "deploy": stage("passed", None)}
    assert mermaid_timeline(report(tmp_path, stages)) is None
    assert "mermaid" not in markdown_summary(report(tmp_path, stages))


# -- the GitHub step summary ------------------------------------------------------------------


def section(body: str) -> str:
    return f"{SUMMARY_START}\n{body}\n{SUMMARY_END}\n"


def test_the_step_summary_is_created_when_missing(tmp_path: Path) -> None:
    path = tmp_path / "summary.md"
    update_summary(path, section("first"))
    assert path.read_text() == section("first")


def test_stagegates_section_is_replaced_and_what_surrounds_it_kept(tmp_path: Path) -> None:
    path = tmp_path / "summary.md"
    path.write_text(f"# before\n{section('first')}# after\n")
    update_summary(path, section("second"))
    assert path.read_text() == f"# before\n{SUMMARY_START}\nsecond\n{SUMMARY_END}\n# after\n"


def test_a_section_is_appended_on_a_line_of_its_own(tmp_path: Path) -> None:
    path = tmp_path / "summary.md"
    path.write_text("# other step, no newline")
    update_summary(path, section("mine"))
    assert path.read_text() == "# other step, no newline\n" + section("mine")
    path.write_text("# other step\n")
    update_summary(path, section("mine"))
    assert path.read_text() == "# other step\n" + section("mine")


def test_a_summary_with_only_a_start_marker_gets_a_whole_section_appended(tmp_path: Path) -> None:
    path = tmp_path / "summary.md"
    path.write_text(f"{SUMMARY_START}\nhalf\n")
    update_summary(path, section("mine"))
    assert path.read_text() == f"{SUMMARY_START}\nhalf\n" + section("mine")


def test_a_summary_with_only_an_end_marker_gets_a_whole_section_appended(tmp_path: Path) -> None:
    path = tmp_path / "summary.md"
    path.write_text(f"stray\n{SUMMARY_END}\n")
    update_summary(path, section("mine"))
    assert path.read_text() == f"stray\n{SUMMARY_END}\n" + section("mine")


def test_the_step_summary_is_cleaned_of_escapes(tmp_path: Path) -> None:
    path = tmp_path / "summary.md"
    path.write_text("\x1b[32mgreen\x1b[0m\n")
    update_summary(path, section("ok"))
    assert path.read_text() == "green\n" + section("ok")


def test_a_passed_run_under_github_actions_writes_the_summary_without_an_annotation(tmp_path: Path) -> None:
    path = tmp_path / "summary.md"
    emitted: list[str] = []
    run = report(tmp_path, {"build": stage("passed")})
    publish_to_github(run, {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(path)}, emitted.append)
    assert emitted == [] and path.read_text() == markdown_summary(run)


def test_publishing_needs_github_actions_to_be_true_and_a_summary_file_to_write_one(tmp_path: Path) -> None:
    path = tmp_path / "summary.md"
    emitted: list[str] = []
    run = report(tmp_path, {"deploy": stage("failed")}, deploy_error())
    publish_to_github(run, {"GITHUB_ACTIONS": "false", "GITHUB_STEP_SUMMARY": str(path)}, emitted.append)
    assert emitted == [] and not path.exists()
    publish_to_github(run, {"GITHUB_ACTIONS": "true"}, emitted.append)
    assert len(emitted) == 1 and not path.exists()


def test_an_annotation_escapes_what_the_workflow_command_syntax_reserves() -> None:
    error = {
        "stage": "build",
        "code": "BUILD_FAILED",
        "message": "100% broken\r\nsecond line",
        "hint": "fix a:b, c",
        "subject": {"file": "dir,x/Docker:file", "line": "7"},
    }
    assert github_annotation(error) == (
        "::error file=dir%2Cx/Docker%3Afile,line=7,title=BUILD_FAILED in build::"
        "100%25 broken%0D%0Asecond line%0Afix a:b, c%0Are-running will not help: fix dir,x/Docker:file:7"
    )


def test_an_annotation_without_a_line_or_hint_has_neither() -> None:
    error = {
        "stage": "deploy",
        "code": "APPLY_FAILED",
        "message": "m",
        "subject": {"file": "k8s/a.yaml", "line": None},
    }
    assert github_annotation(error) == (
        "::error file=k8s/a.yaml,title=APPLY_FAILED in deploy::m%0Are-running will not help: fix k8s/a.yaml"
    )
