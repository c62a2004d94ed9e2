"""Reports made from the ledger, for where people look: JUnit for test reporters, GitHub
annotations and a job summary, and the Markdown of ``nox -s report``.

Everything here is a function of the artifacts dir (run.json, error.json, the e2e suite's
JUnit), so a CI run's downloaded artifacts render the same reports on a laptop. Each report of
a failure says whether a re-run can help (:func:`stagegate.errors.rerun_advice`, from the
failure's class).

Reports never break on what they quote: every text goes through :func:`clean_text` (terminal
escapes and XML-invalid characters removed) before it reaches junit.xml, the job summary or
an annotation, and a broken e2e JUnit file becomes an errored case of its own.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

from .errors import rerun_advice
from .ledger import Ledger
from .redact import clean
from .resultcache import describe_reused

log = logging.getLogger(__name__)

JUNIT = "junit.xml"
E2E_JUNIT = "e2e-junit.xml"
SUMMARY_START = "<!-- stagegate:summary -->"
SUMMARY_END = "<!-- /stagegate:summary -->"


# What XML 1.0 does not allow: C0 controls except tab/newline/CR, surrogates, U+FFFE/U+FFFF.
_XML_INVALID = re.compile("[^\t\n\r\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def clean_text(text: str) -> str:
    """``text`` as any report may quote it: :func:`stagegate.redact.clean` (no secret in clear —
    the e2e suite's own report is quoted too —, no terminal escapes), nothing XML cannot hold."""
    return _XML_INVALID.sub("", clean(text))


def _clean(value: Any) -> Any:
    """:func:`clean_text` applied to every string of a JSON document (keys too)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, Mapping):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


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
        return cls(artifacts, _clean(run), _clean(error))

    @property
    def stages(self) -> dict[str, dict[str, Any]]:
        return self.run.get("stages") or {}

    def failed_stage(self) -> str | None:
        return self.error["stage"] if self.error else None


# -- JUnit -------------------------------------------------------------------------------------


def write_junit(report: RunReport) -> Path:
    """``junit.xml``: a testcase per stage, merged with the e2e suite's own cases.

    Raises OSError when the file cannot be written; the previous junit.xml is then removed, so
    that no stale report passes for this run's.
    """
    path = report.artifacts / JUNIT
    tmp = report.artifacts / f".{JUNIT}.tmp"
    try:
        xml = JUnitXml("stagegate")
        xml.add_testsuite(_stage_suite(report))
        for suite in _e2e_suites(report.artifacts / E2E_JUNIT):
            xml.add_testsuite(suite)
        xml.update_statistics()
        try:
            xml.write(str(tmp), pretty=True)
        except OSError:
            raise
        except Exception as exc:  # whatever slipped past clean_text: the stages' cases alone
            log.warning("junit.xml without the e2e suite's cases: %s", exc)
            xml = JUnitXml("stagegate")
            xml.add_testsuite(_stage_suite(report))
            xml.update_statistics()
            xml.write(str(tmp), pretty=True)
        os.replace(tmp, path)  # readers see the old report or the new one, never half
    except OSError:
        for stale in (tmp, path):
            try:
                stale.unlink(missing_ok=True)
            except OSError as exc:
                log.warning("%s is left from an earlier stage and could not be removed: %s", stale, exc)
        raise
    return path


def _stage_suite(report: RunReport) -> TestSuite:
    suite = TestSuite("stagegate")
    failed = report.failed_stage()
    for stage, record in report.stages.items():
        case = TestCase(stage, classname="stagegate.stages", time=_seconds(record.get("duration_s")))
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
        if status == "passed" and isinstance((record.get("outputs") or {}).get("cached"), Mapping):
            case.system_out = (
                f"passed from the e2e result cache: {describe_reused(record['outputs']['cached'])}"
            )
        elif isinstance(bundled := (record.get("outputs") or {}).get("from_bundle"), Mapping):
            case.system_out = (
                f"{status} in run {bundled.get('run_id')}, taken from the bundle {bundled.get('dir')}"
            )
        suite.add_testcase(case)
    suite.update_statistics()
    return suite


def _e2e_suites(e2e: Path) -> list[TestSuite]:
    """The e2e tool's own suites, or one errored case saying why they cannot be read."""
    if not e2e.exists():
        return []
    try:
        theirs = JUnitXml.fromfile(str(e2e))
        suites = [theirs] if isinstance(theirs, TestSuite) else list(theirs)
        for suite in suites:  # touch what writing and the statistics will read
            suite.update_statistics()
            for case in suite:
                _ = (case.name, case.classname, case.time, case.result)
        if not all(isinstance(suite, TestSuite) for suite in suites):
            raise ValueError("the root element holds no <testsuite>")
        return suites
    except Exception as exc:  # a broken e2e report must not hide the stages'
        broken = TestSuite("e2e")
        case = TestCase(E2E_JUNIT, classname="stagegate.e2e")
        error = Error(clean_text(f"could not read {E2E_JUNIT}: {exc}"), "UnreadableReport")
        case.result = [error]
        broken.add_testcase(case)
        broken.update_statistics()
        return [broken]


def _seconds(value: Any) -> float:
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def _failure_text(error: Mapping[str, Any]) -> str:
    lines = [f"{error['code']}: {error['message']}"]
    subject = error.get("subject") or {}
    where = _location(error)
    if where:
        lines.append(f"at {where}")
    if error.get("hint"):
        lines.append(f"hint: {error['hint']}")
    lines.append(rerun_advice(error))
    for key in ("image", "pod", "container", "reason", "exit_code", "failed_tests"):
        if key in subject:
            lines.append(f"{key}: {subject[key]}")
    if error.get("log_file"):
        lines.append(f"log: {error['log_file']}")
    output = _output(error)
    if output:
        lines += ["", "last lines of output:", *output]
    if error.get("log_excerpt"):
        lines += ["", error["log_excerpt"]]
    return "\n".join(lines)


def _output(error: Mapping[str, Any]) -> list[str]:
    """The failing command's last lines (``subject.output``), as every report quotes them."""
    output = (error.get("subject") or {}).get("output")
    return [str(line) for line in output] if isinstance(output, list) else []


def _location(error: Mapping[str, Any]) -> str | None:
    subject = error.get("subject") or {}
    if "file" in subject:
        return f"{subject['file']}:{subject['line']}" if subject.get("line") else str(subject["file"])
    return None


# -- GitHub Actions ----------------------------------------------------------------------------


def github_annotation(error: Mapping[str, Any]) -> str:
    """The ``::error`` workflow command for the failure, on the file and line when known."""
    error = _clean(error)
    subject = error.get("subject") or {}
    properties = []
    if "file" in subject:
        properties.append(f"file={_escape_property(str(subject['file']))}")
        if subject.get("line"):
            properties.append(f"line={int(subject['line'])}")
    title = f"{error['code']} in {error['stage']}"
    properties.append(f"title={_escape_property(title)}")
    message = "\n".join(
        [
            error["message"],
            *_output(error),
            *([error["hint"]] if error.get("hint") else []),
            rerun_advice(error),
        ]
    )
    return f"::error {','.join(properties)}::{_escape_data(message)}"


def _fence(lines: list[str]) -> str:
    """A Markdown code fence longer than any run of backticks in ``lines``."""
    longest = max((len(run) for line in lines for run in re.findall("`+", line)), default=0)
    return "`" * max(3, longest + 1)


def markdown_summary(report: RunReport) -> str:
    """The job summary: stage table, the error with its hint, where to look, a timeline."""
    report = RunReport(report.artifacts, _clean(report.run), _clean(report.error))
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
        cached = (record.get("outputs") or {}).get("cached")
        shown = f"{status} (cached: run `{cached.get('run_id')}`)" if isinstance(cached, Mapping) else status
        if isinstance(bundled := (record.get("outputs") or {}).get("from_bundle"), Mapping):
            shown = f"{status} (from the bundle of run `{bundled.get('run_id')}`)"
        lines.append(
            f"| {stage} | {icons.get(status, '')} {shown} | {f'{duration:.1f} s' if duration is not None else ''} |"
        )
    error = report.error
    if error:
        lines += ["", f"### ❌ `{error['code']}` in {error['stage']}", "", error["message"], ""]
        output = _output(error)
        if output:
            fence = _fence(output)
            lines += [fence, *output, fence, ""]
        where = _location(error)
        if where:
            lines.append(f"**Where:** `{where}`  ")
        if error.get("hint"):
            lines.append(f"**Hint:** {error['hint']}  ")
        lines.append(f"**Re-run:** {rerun_advice(error)}  ")
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
    path.write_text(clean_text(text))


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")
