"""Reports made from the ledger, for where people look: JUnit for test reporters, GitHub
annotations and a job summary, and the Markdown of ``nox -s report``.

Everything here is a function of the artifacts dir (run.json, error.json, the e2e suite's
JUnit), so a CI run's downloaded artifacts render the same reports on a laptop.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

from tasks.ledger import Ledger

JUNIT = "junit.xml"
E2E_JUNIT = "e2e-junit.xml"
SUMMARY_START = "<!-- stagegate:summary -->"
SUMMARY_END = "<!-- /stagegate:summary -->"


@dataclass(frozen=True)
class RunReport:
    """What the reports are made of: the run record and its error file, if any."""

    artifacts: Path
    run: dict[str, Any]
    error: dict[str, Any] | None

    @classmethod
    def load(cls, artifacts: Path) -> RunReport | None:
        ledger = Ledger(artifacts)
        run = ledger.read_run()
        if run is None:
            return None
        error = ledger.read_error()
        if error is not None and error.get("run_id") != run.get("run_id"):
            error = None
        return cls(artifacts, run, error)

    @property
    def stages(self) -> dict[str, dict[str, Any]]:
        return self.run.get("stages") or {}

    def failed_stage(self) -> str | None:
        return self.error["stage"] if self.error else None


# -- JUnit -------------------------------------------------------------------------------------


def write_junit(report: RunReport) -> Path:
    """``junit.xml``: a testcase per stage, merged with the e2e suite's own cases."""
    suite = TestSuite("stagegate")
    failed = report.failed_stage()
    for stage, record in report.stages.items():
        case = TestCase(stage, classname="stagegate.stages", time=float(record.get("duration_s") or 0))
        status = record.get("status")
        if status in ("failed", "interrupted") and report.error and report.error["stage"] == stage:
            error = report.error
            result = Failure(f"{error['code']}: {error['message']}", error["code"])
            result.text = _failure_text(error)
            case.result = [result]
        elif status in ("failed", "interrupted"):
            case.result = [Failure(f"{stage} {status}", status)]
        elif status in ("not-run", "running"):
            reason = f"not run: upstream {failed} failed" if failed else "not run in this run"
            case.result = [Skipped(reason)]
        elif status == "skipped":
            case.result = [Skipped("skipped")]
        suite.add_testcase(case)
    suite.update_statistics()
    xml = JUnitXml("stagegate")
    xml.add_testsuite(suite)
    e2e = report.artifacts / E2E_JUNIT
    if e2e.exists():
        try:
            theirs = JUnitXml.fromfile(str(e2e))
            for their_suite in [theirs] if isinstance(theirs, TestSuite) else list(theirs):
                xml.add_testsuite(their_suite)
        except Exception as exc:  # a broken e2e report must not hide the stages'
            broken = TestSuite("e2e")
            case = TestCase("e2e-junit.xml", classname="stagegate.e2e")
            case.result = [Error(f"could not read {E2E_JUNIT}: {exc}", "UnreadableReport")]
            broken.add_testcase(case)
            xml.add_testsuite(broken)
    xml.update_statistics()
    path = report.artifacts / JUNIT
    tmp = report.artifacts / f".{JUNIT}.tmp"
    xml.write(str(tmp), pretty=True)
    os.replace(tmp, path)  # readers see the old report or the new one, never half
    return path


def _failure_text(error: Mapping[str, Any]) -> str:
    lines = [f"{error['code']}: {error['message']}"]
    subject = error.get("subject") or {}
    where = _location(error)
    if where:
        lines.append(f"at {where}")
    if error.get("hint"):
        lines.append(f"hint: {error['hint']}")
    for key in ("image", "pod", "container", "reason", "exit_code", "failed_tests"):
        if key in subject:
            lines.append(f"{key}: {subject[key]}")
    if error.get("log_file"):
        lines.append(f"log: {error['log_file']}")
    if error.get("log_excerpt"):
        lines += ["", error["log_excerpt"]]
    return "\n".join(lines)


def _location(error: Mapping[str, Any]) -> str | None:
    subject = error.get("subject") or {}
    if "file" in subject:
        return f"{subject['file']}:{subject['line']}" if subject.get("line") else str(subject["file"])
    return None


# -- GitHub Actions ----------------------------------------------------------------------------


def github_annotation(error: Mapping[str, Any]) -> str:
    """The ``::error`` workflow command for the failure, on the file and line when known."""
    subject = error.get("subject") or {}
    properties = []
    if "file" in subject:
        properties.append(f"file={_escape_property(str(subject['file']))}")
        if subject.get("line"):
            properties.append(f"line={int(subject['line'])}")
    title = f"{error['code']} in {error['stage']}"
    properties.append(f"title={_escape_property(title)}")
    message = error["message"] + (f"\n{error['hint']}" if error.get("hint") else "")
    return f"::error {','.join(properties)}::{_escape_data(message)}"


def markdown_summary(report: RunReport) -> str:
    """The job summary: stage table, the error with its hint, where to look, a timeline."""
    run = report.run
    lines = [SUMMARY_START, f"## stagegate run `{run.get('run_id')}`", ""]
    git = run.get("git") or {}
    facts = [
        f"target: `{run['target']}`" if run.get("target") else None,
        f"builder: `{run['builder']}`" if run.get("builder") else None,
        f"git: `{(git.get('sha') or 'unknown')[:12]}`" + (" (dirty)" if git.get("dirty") else ""),
    ]
    lines += [" · ".join(f for f in facts if f), "", "| stage | status | duration |", "|---|---|---|"]
    icons = {
        "passed": "✅",
        "failed": "❌",
        "interrupted": "⛔",
        "skipped": "⏭️",
        "not-run": "⬜",
        "running": "⏳",
    }
    for stage, record in report.stages.items():
        status = record.get("status", "?")
        duration = record.get("duration_s")
        lines.append(
            f"| {stage} | {icons.get(status, '')} {status} | {f'{duration:.1f} s' if duration is not None else ''} |"
        )
    error = report.error
    if error:
        lines += ["", f"### ❌ `{error['code']}` in {error['stage']}", "", error["message"], ""]
        where = _location(error)
        if where:
            lines.append(f"**Where:** `{where}`  ")
        if error.get("hint"):
            lines.append(f"**Hint:** {error['hint']}  ")
        files = [f"`{report.artifacts.name}/error.json`"]
        if error.get("log_file"):
            files.append(f"`{error['log_file']}`")
        if (error.get("subject") or {}).get("diagnostics"):
            files.append(f"`{error['subject']['diagnostics']}/`")
        lines.append(f"**Files:** {', '.join(files)} (in the uploaded artifacts)")
        if error.get("log_excerpt"):
            lines += [
                "",
                "<details><summary>log excerpt</summary>",
                "",
                "```",
                error["log_excerpt"][-3000:],
                "```",
                "",
                "</details>",
            ]
        for other in error.get("others") or []:
            lines.append(f"- also `{other['code']}`: {other['message']}")
    gantt = mermaid_timeline(report)
    if gantt:
        lines += ["", "### Timeline", "", "```mermaid", gantt, "```"]
    lines += [SUMMARY_END, ""]
    return "\n".join(lines)


def mermaid_timeline(report: RunReport) -> str | None:
    """A Mermaid gantt chart of the stages that ran (GitHub renders it in summaries)."""
    entries = []
    for stage, record in report.stages.items():
        if not record.get("started_at") or record.get("duration_s") is None:
            continue
        start = datetime.strptime(record["started_at"], "%Y-%m-%dT%H:%M:%SZ")
        status = record.get("status")
        tag = "crit, " if status in ("failed", "interrupted") else ("done, " if status == "passed" else "")
        seconds = max(1, round(float(record["duration_s"])))
        entries.append(f"    {stage} : {tag}{start.strftime('%H:%M:%S')}, {seconds}s")
    if not entries:
        return None
    return "\n".join(
        [
            "gantt",
            "    title stagegate stages",
            "    dateFormat HH:mm:ss",
            "    axisFormat %H:%M:%S",
            "    section run",
            *entries,
        ]
    )


def publish_to_github(report: RunReport, env: Mapping[str, str], emit: Any) -> None:
    """Under GitHub Actions: the annotation (once per failed run) and the job summary."""
    if env.get("GITHUB_ACTIONS") != "true":
        return
    if report.error is not None:
        emit(github_annotation(report.error))
    summary_file = env.get("GITHUB_STEP_SUMMARY")
    if summary_file:
        update_summary(Path(summary_file), markdown_summary(report))


def update_summary(path: Path, section: str) -> None:
    """Replace stagegate's section of the step summary (each session updates it), keeping the rest."""
    text = path.read_text() if path.exists() else ""
    start, end = text.find(SUMMARY_START), text.find(SUMMARY_END)
    if start != -1 and end != -1:
        text = text[:start] + section.rstrip("\n") + text[end + len(SUMMARY_END) :]
    else:
        text = text + ("\n" if text and not text.endswith("\n") else "") + section
    path.write_text(text)


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")
