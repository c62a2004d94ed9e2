"""Failure classes: every code of the catalogue says whether a re-run can help, error.json
carries it (``class`` and ``retry``), an error may override its code's class, UPSTREAM_FAILED
takes its cause's, and the terminal, the job summary, the annotation and junit.xml say it in
words."""

from __future__ import annotations

import enum
import io
import json
import re
from pathlib import Path

import jsonschema
import pytest
from rich.console import Console
from stagegate.builder import BuildFailure
from stagegate.config import load_config
from stagegate.errors import (
    Code,
    FailureClass,
    StagegateError,
    failure_class_of,
    rerun_advice,
)
from stagegate.ledger import Ledger
from stagegate.reports import RunReport, github_annotation, markdown_summary, write_junit
from stagegate.stages.build_image import build_error
from stagegate.ui import Reporter

from tests.conftest import ROOT, SCHEMA
from tests.unit.test_build_errors import recorded
from tests.unit.test_ledger import GIT, fixed_clock

ENVIRONMENT, PRODUCT = FailureClass.ENVIRONMENT, FailureClass.PRODUCT
CONFIGURATION, INTERNAL = FailureClass.CONFIGURATION, FailureClass.INTERNAL


# -- the catalogue -----------------------------------------------------------------------------


def test_every_code_of_the_catalogue_has_a_class() -> None:
    assert len(Code) > 40
    for code in Code:
        assert isinstance(code.failure_class, FailureClass), code
        assert Code(code.value) is code and str(code) == code.value  # still a plain string code


def test_a_code_declared_without_a_class_is_refused_when_the_catalogue_loads() -> None:
    with pytest.raises(TypeError):

        class Catalogue(enum.StrEnum):  # the catalogue's own constructor, one code lacking a class
            __new__ = Code.__new__  # type: ignore[assignment]
            FINE = "FINE", PRODUCT
            CLASSLESS = "CLASSLESS"


@pytest.mark.parametrize(
    ("code", "klass"),
    [
        (Code.DOCKER_UNAVAILABLE, ENVIRONMENT),
        (Code.CLUSTER_CREATE_FAILED, ENVIRONMENT),
        (Code.IMAGE_LOAD_FAILED, ENVIRONMENT),
        (Code.CLUSTER_UNREACHABLE, ENVIRONMENT),
        (Code.IMAGE_PUSH_FAILED, ENVIRONMENT),
        (Code.INTERRUPTED, ENVIRONMENT),
        (Code.BUILD_FAILED, PRODUCT),
        (Code.MANIFEST_INVALID, PRODUCT),
        (Code.CONTAINER_CRASHLOOP, PRODUCT),
        (Code.E2E_FAILED, PRODUCT),
        (Code.CONFIG_INVALID, CONFIGURATION),
        (Code.CONTEXT_NOT_ALLOWED, CONFIGURATION),
        (Code.INTERNAL_ERROR, INTERNAL),
    ],
)
def test_the_codes_the_contract_names_have_their_class(code: Code, klass: FailureClass) -> None:
    assert code.failure_class is klass
    assert klass.rerun_may_pass == (klass is ENVIRONMENT)


def test_the_schema_and_the_readme_table_know_every_class() -> None:
    assert SCHEMA["properties"]["class"]["enum"] == [c.value for c in FailureClass]
    table = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        row = re.match(r"^\| `([A-Z0-9_]+)` \| ([a-z]+) \| ", line)
        if row:
            table[row.group(1)] = row.group(2)
    assert set(table) == set(Code.__members__), "README's table of error codes: a row per code"
    for code, klass in table.items():
        assert Code(code).failure_class == klass, f"README says {code} is {klass}"


# -- one error overriding its code's class -----------------------------------------------------


def test_an_error_has_its_codes_class_unless_it_overrides_it() -> None:
    assert StagegateError(Code.BUILD_FAILED, "m").failure_class is PRODUCT
    overridden = StagegateError(Code.BUILD_FAILED, "m", class_override=ENVIRONMENT)
    assert overridden.failure_class is ENVIRONMENT
    assert StagegateError(Code.APPLY_FAILED, "m", class_override=ENVIRONMENT).failure_class is ENVIRONMENT
    assert StagegateError(Code.APPLY_FAILED, "m").failure_class is PRODUCT


# -- error.json ----------------------------------------------------------------------------------


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(tmp_path / "artifacts", fixed_clock())


def fail(ledger: Ledger, stage: str, error: StagegateError) -> dict:
    ledger.begin(stage, git=GIT, options={})
    return ledger.record_failure(stage, error, 1.0, {})


@pytest.mark.parametrize(
    ("error", "klass", "retry"),
    [
        (StagegateError(Code.BUILD_FAILED, "m"), "product", False),
        (StagegateError(Code.DOCKER_UNAVAILABLE, "m"), "environment", True),
        (StagegateError(Code.CONFIG_INVALID, "m"), "configuration", False),
        (StagegateError(Code.INTERNAL_ERROR, "m"), "internal", False),
        (StagegateError(Code.BUILD_FAILED, "m", class_override=ENVIRONMENT), "environment", True),
    ],
)
def test_error_json_carries_the_class_and_whether_a_retry_may_help(
    ledger: Ledger, error: StagegateError, klass: str, retry: bool
) -> None:
    document = fail(ledger, "preflight", error)
    on_disk = json.loads(ledger.error_path.read_text())
    assert (on_disk["class"], on_disk["retry"]) == (document["class"], document["retry"]) == (klass, retry)
    jsonschema.validate(on_disk, SCHEMA)


def test_the_schema_refuses_a_retry_that_contradicts_the_class(ledger: Ledger) -> None:
    document = fail(ledger, "preflight", StagegateError(Code.DOCKER_UNAVAILABLE, "m"))
    jsonschema.validate(document, SCHEMA)
    for klass, retry in (("environment", False), ("product", True)):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**document, "class": klass, "retry": retry}, SCHEMA)
    with pytest.raises(jsonschema.ValidationError):  # one without the other
        jsonschema.validate({k: v for k, v in document.items() if k != "retry"}, SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**document, "class": "flaky"}, SCHEMA)
    older = {k: v for k, v in document.items() if k not in ("class", "retry")}
    jsonschema.validate(older, SCHEMA)  # the field is additive: files of earlier versions stay valid


@pytest.mark.parametrize(
    ("upstream_code", "klass", "retry"),
    [(Code.DOCKER_UNAVAILABLE, "environment", True), (Code.BUILD_FAILED, "product", False)],
)
def test_upstream_failed_takes_the_class_of_the_upstream_error(
    ledger: Ledger, upstream_code: Code, klass: str, retry: bool
) -> None:
    ledger.begin("preflight", git=GIT, options={})
    ledger.record_pass("preflight", 0.1, {})
    fail(ledger, "build", StagegateError(upstream_code, "upstream"))
    with pytest.raises(StagegateError) as caught:
        ledger.begin("verify", git=GIT, options={})
    document = ledger.record_failure("verify", caught.value, 0.0, {})
    assert document["code"] == "UPSTREAM_FAILED" and document["cause"]["code"] == upstream_code
    assert (document["class"], document["retry"]) == (klass, retry)
    jsonschema.validate(document, SCHEMA)


def test_upstream_failed_without_an_upstream_error_is_configuration(ledger: Ledger) -> None:
    with pytest.raises(StagegateError) as caught:  # build started on its own: preflight never ran
        ledger.begin("build", git=GIT, options={})
    document = ledger.record_failure("build", caught.value, 0.0, {})
    assert "cause" not in document
    assert (document["class"], document["retry"]) == ("configuration", False)


# -- in words ------------------------------------------------------------------------------------


def dropped_connection_error(tmp_path: Path) -> dict:
    """The error.json fields of a build whose engine connection was cut (a recorded output)."""
    root = tmp_path / "repo"
    (root / "app").mkdir(parents=True)
    (root / "app" / "Dockerfile").write_text("FROM scratch\nRUN sleep 60\n")
    (root / "pyproject.toml").write_text(
        '[tool.stagegate]\n[[tool.stagegate.images]]\nname = "t/app"\ncontext = "app"\n'
    )
    config = load_config(root, {})
    failure = BuildFailure(["docker", "build"], 1, recorded("legacy-connection-dropped.txt"))
    error = build_error(config.images["t/app"], failure, config.relpath, config.artifacts / "b.log")
    return {"stage": "build", "code": str(error.code), "message": error.message, "subject": error.subject}


def test_a_dropped_engine_says_a_rerun_may_pass(tmp_path: Path) -> None:
    error = dropped_connection_error(tmp_path)
    assert error["code"] == "DOCKER_UNAVAILABLE"
    assert rerun_advice(error) == "a re-run may pass: the Docker daemon went away during the build"


@pytest.mark.parametrize(
    ("error", "advice"),
    [
        (
            {
                "code": "BUILD_FAILED",
                "message": "m",
                "subject": {"file": "example/api/Dockerfile", "line": 7},
            },
            "re-running will not help: fix example/api/Dockerfile:7",
        ),
        (
            {"code": "E2E_FAILED", "message": "1 e2e test(s) failed", "subject": {}},
            "re-running will not help: the same inputs fail the same way",
        ),
        (
            {"code": "CONFIG_INVALID", "message": "m", "subject": {"key": "tool.stagegate.target"}},
            "re-running will not help: fix the configuration (tool.stagegate.target)",
        ),
        (
            {"code": "INTERNAL_ERROR", "message": "m", "subject": {}},
            "re-running will likely not help: this is a bug in stagegate (report it with error.json)",
        ),
        (  # the class recorded in the file wins over the code's
            {
                "code": "BUILD_FAILED",
                "class": "environment",
                "message": "t/a: lost",
                "subject": {"image": "t/a"},
            },
            "a re-run may pass: lost",
        ),
        (  # a file written before classes: its code's class
            {"code": "CLUSTER_UNREACHABLE", "message": "kubectl lost the API server", "subject": {}},
            "a re-run may pass: kubectl lost the API server",
        ),
    ],
)
def test_the_advice_in_words(error: dict, advice: str) -> None:
    assert rerun_advice(error) == advice


def test_a_document_with_an_unknown_code_and_no_class_reads_as_internal() -> None:
    assert failure_class_of({"code": "FROM_THE_FUTURE"}) is INTERNAL
    assert failure_class_of({"code": "FROM_THE_FUTURE", "class": "environment"}) is ENVIRONMENT


def failed_run(ledger: Ledger, error: StagegateError) -> RunReport:
    fail(ledger, "preflight", error)
    report = RunReport.load(ledger.artifacts)
    assert report is not None
    return report


@pytest.mark.parametrize(
    ("error", "advice"),
    [
        (
            StagegateError(
                Code.DOCKER_UNAVAILABLE,
                "t/app: the Docker daemon went away during the build",
                subject={"image": "t/app"},
            ),
            "a re-run may pass: the Docker daemon went away during the build",
        ),
        (
            StagegateError(
                Code.BUILD_FAILED, "t/app: `RUN exit 3` failed", subject={"file": "app/Dockerfile", "line": 3}
            ),
            "re-running will not help: fix app/Dockerfile:3",
        ),
    ],
)
def test_terminal_summary_annotation_and_junit_say_it(
    ledger: Ledger, error: StagegateError, advice: str
) -> None:
    report = failed_run(ledger, error)
    other = (
        "re-running will not help: fix app/Dockerfile:3"
        if advice.startswith("a re-run")
        else "a re-run may pass: the Docker daemon went away during the build"
    )
    stream = io.StringIO()
    Reporter(Console(file=stream, width=200)).summary(report.run, report.error, ledger.artifacts)
    assert report.error is not None
    texts = {
        "terminal": stream.getvalue(),
        "summary": markdown_summary(report),
        "annotation": github_annotation(report.error),
        "junit": write_junit(report).read_text(),
    }
    for where, text in texts.items():
        assert advice in text, where
        assert other not in text, where
    assert f"**Re-run:** {advice}" in texts["summary"]
    assert texts["annotation"].endswith("%0A" + advice)
    lines = texts["terminal"].splitlines()
    cross = next(i for i, line in enumerate(lines) if line.startswith("✗ "))
    assert f"  {advice}" in lines[cross:]
