"""run.json / error.json: new runs, the upstream guard, one error file per failed run."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
from stagegate.clock import Clock
from stagegate.errors import Code, CommandEvidence, StagegateError
from stagegate.ledger import PIPELINE, Ledger, write_json_atomic

from tests.conftest import SCHEMA

GIT = {"sha": "0123abc", "dirty": False}


def fixed_clock() -> Clock:
    return Clock(now=lambda: datetime(2026, 11, 28, 20, 0, 0, tzinfo=UTC), monotonic=lambda: 0.0)


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(tmp_path / "artifacts", fixed_clock())


def build_failure() -> StagegateError:
    return StagegateError(
        Code.BUILD_FAILED,
        "example/api: `RUN exit 3` failed with exit code 3 at api/Dockerfile:7",
        "fix api/Dockerfile:7",
        {"image": "example/api", "file": "api/Dockerfile", "line": 7},
        command=CommandEvidence(["docker", "build", "."], 3),
        log_excerpt="The command '/bin/sh -c exit 3' returned a non-zero code: 3",
        log_file=".stagegate/logs/build/example-api.log",
    )


def test_first_stage_starts_a_new_run_with_every_stage_not_run(ledger: Ledger) -> None:
    run = ledger.begin("preflight", git=GIT, options={})
    assert run["git"] == GIT
    assert list(run["stages"]) == list(PIPELINE)
    assert run["stages"]["preflight"]["status"] == "running"
    assert all(run["stages"][s]["status"] == "not-run" for s in PIPELINE[1:])
    assert json.loads(ledger.run_path.read_text())["run_id"] == run["run_id"]


def test_later_stage_continues_the_run_of_its_upstream(ledger: Ledger) -> None:
    first = ledger.begin("preflight", git=GIT, options={})
    ledger.record_pass("preflight", 0.5, {"builder": "legacy"})
    second = ledger.begin("build", git=GIT, options={})
    assert second["run_id"] == first["run_id"]
    assert second["builder"] == "legacy"  # run-level output of preflight


def test_the_repository_state_is_asked_for_only_when_a_run_starts(ledger: Ledger) -> None:
    asked: list[str] = []

    def git() -> dict:
        asked.append("git")
        return GIT

    run = ledger.begin("preflight", git=git, options={})
    ledger.record_pass("preflight", 0.5, {})
    ledger.begin("build", git=git, options={})

    assert asked == ["git"] and run["git"] == GIT
    assert json.loads(ledger.run_path.read_text())["git"] == GIT


def test_failure_writes_one_error_file_that_validates(ledger: Ledger) -> None:
    ledger.begin("preflight", git=GIT, options={})
    ledger.record_pass("preflight", 0.1, {})
    ledger.begin("build", git=GIT, options={})
    document = ledger.record_failure("build", build_failure(), 2.5, {"images": {}})
    jsonschema.validate(document, SCHEMA)
    on_disk = json.loads(ledger.error_path.read_text())
    assert on_disk == document
    assert on_disk["stage"] == "build" and on_disk["code"] == "BUILD_FAILED"
    assert on_disk["subject"]["line"] == 7
    assert on_disk["command"] == {"argv": ["docker", "build", "."], "exit_code": 3}
    assert on_disk["not_run"] == list(PIPELINE[PIPELINE.index("build") + 1 :])
    assert on_disk["failed_at"] == "2026-11-28T20:00:00Z"
    assert ledger.read_run()["stages"]["build"]["status"] == "failed"


def test_keep_going_failures_are_listed_in_the_one_error_file(ledger: Ledger) -> None:
    ledger.begin("preflight", git=GIT, options={})
    ledger.record_pass("preflight", 0.1, {})
    ledger.begin("build", git=GIT, options={})
    first, second = build_failure(), build_failure()
    second.subject = {"image": "example/worker"}
    first.others = [second]
    document = ledger.record_failure("build", first, 1.0, {})
    assert document["subject"]["image"] == "example/api"
    assert [o["subject"]["image"] for o in document["others"]] == ["example/worker"]
    jsonschema.validate(document, SCHEMA)


def test_a_new_run_clears_the_previous_runs_error_file(ledger: Ledger) -> None:
    ledger.begin("preflight", git=GIT, options={})
    ledger.record_failure("preflight", StagegateError(Code.DOCKER_UNAVAILABLE, "down", "start it"), 0.1, {})
    assert ledger.error_path.exists()
    ledger.begin("preflight", git=GIT, options={})
    assert not ledger.error_path.exists()


def test_stage_refuses_when_upstream_failed_and_keeps_the_cause(ledger: Ledger) -> None:
    ledger.begin("preflight", git=GIT, options={})
    ledger.record_failure(
        "preflight", StagegateError(Code.DOCKER_UNAVAILABLE, "daemon down", "start it"), 0.1, {}
    )
    with pytest.raises(StagegateError) as caught:
        ledger.begin("build", git=GIT, options={})
    assert caught.value.code == Code.UPSTREAM_FAILED
    assert caught.value.subject == {"stage": "preflight", "status": "failed"}
    document = ledger.record_failure("build", caught.value, 0.0, {})
    assert document["cause"]["code"] == "DOCKER_UNAVAILABLE"  # the root cause is not lost
    assert document["stage"] == "build"
    jsonschema.validate(document, SCHEMA)


def test_stage_refuses_when_upstream_never_ran(ledger: Ledger) -> None:
    with pytest.raises(StagegateError) as caught:
        ledger.begin("build", git=GIT, options={})
    assert caught.value.code == Code.UPSTREAM_FAILED
    assert "never ran" in caught.value.message
    assert caught.value.subject["stage"] == "preflight"


def test_rerunning_a_failed_stage_removes_its_error_file_when_it_passes(ledger: Ledger) -> None:
    ledger.begin("preflight", git=GIT, options={})
    ledger.record_pass("preflight", 0.1, {})
    ledger.begin("build", git=GIT, options={})
    ledger.record_failure("build", build_failure(), 1.0, {})
    ledger.begin("build", git=GIT, options={})
    assert not ledger.error_path.exists()
    ledger.record_pass("build", 1.0, {})
    assert ledger.read_run()["stages"]["build"]["status"] == "passed"


def test_atomic_write_leaves_no_temporary_files_and_keeps_the_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "run.json"
    write_json_atomic(target, {"a": 1})
    with pytest.raises(TypeError):
        write_json_atomic(target, {"not serialisable": object()})
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_interrupted_stage_is_recorded_as_interrupted(ledger: Ledger) -> None:
    ledger.begin("preflight", git=GIT, options={})
    error = StagegateError(Code.INTERRUPTED, "preflight was interrupted", "re-run")
    document = ledger.record_failure("preflight", error, 0.2, {}, interrupted=True)
    assert ledger.read_run()["stages"]["preflight"]["status"] == "interrupted"
    assert document["code"] == "INTERRUPTED"


def test_the_schema_knows_every_code_and_every_stage() -> None:
    # tasks/error.schema.json ships to users; it must not drift from the code that writes the file
    assert SCHEMA["properties"]["code"]["enum"] == [c.value for c in Code]
    assert SCHEMA["properties"]["others"]["items"]["properties"]["code"]["enum"] == [c.value for c in Code]
    assert SCHEMA["properties"]["stage"]["enum"] == list(PIPELINE)


def test_a_new_run_removes_the_previous_runs_reports_and_diagnostics(ledger: Ledger) -> None:
    ledger.begin("preflight", git=GIT, options={})
    artifacts = ledger.artifacts
    for name in ("junit.xml", "e2e-junit.xml", "manifests.yaml"):
        (artifacts / name).write_text("<from the run before>")
    (artifacts / "diagnostics" / "pods").mkdir(parents=True)
    (artifacts / "diagnostics" / "pods" / "api.log").write_text("old crash")
    (artifacts / "logs").mkdir()
    (artifacts / "logs" / "kept.log").write_text("not run-scoped")
    ledger.record_pass("preflight", 0.1, {})
    ledger.begin("build", git=GIT, options={})  # the same run goes on: nothing removed
    assert (artifacts / "junit.xml").exists() and (artifacts / "diagnostics").exists()
    ledger.begin("preflight", git=GIT, options={})  # a new run
    left = sorted(p.relative_to(artifacts).as_posix() for p in artifacts.rglob("*"))
    assert not any(n.startswith(("junit", "e2e-junit", "manifests", "diagnostics")) for n in left), left
    assert (artifacts / "logs" / "kept.log").exists()


def test_write_text_atomic_redacts_and_replaces_the_whole_file(tmp_path: Path) -> None:
    from stagegate import redact
    from stagegate.ledger import write_text_atomic

    token = "sgtok_" + "9" * 20
    redact.register(token)
    try:
        path = tmp_path / "deep" / "kubeconfig"
        write_text_atomic(path, "a much longer first version\n")
        write_text_atomic(path, f"token: {token}\n")
    finally:
        redact.SECRETS.clear()
    assert path.read_text() == "token: <redacted>\n"
    assert [p.name for p in path.parent.iterdir()] == ["kubeconfig"]  # no temporary file left


def test_a_note_is_recorded_in_the_current_run_and_nowhere_without_one(ledger: Ledger) -> None:
    ledger.note("teardown", {"removed": ["cluster"]})
    assert not ledger.run_path.exists()  # no run yet: nothing written
    ledger.begin("preflight", git=GIT, options={})
    ledger.note("teardown", {"removed": ["cluster"]})
    assert json.loads(ledger.run_path.read_text())["teardown"] == {"removed": ["cluster"]}


def test_begin_records_the_options_and_names_the_refusing_stage(ledger: Ledger) -> None:
    ledger.begin("preflight", git=GIT, options={"jobs": 3})
    assert json.loads(ledger.run_path.read_text())["options"] == {"jobs": 3}
    with pytest.raises(StagegateError) as caught:
        ledger.begin("build", git=GIT, options={})
    assert caught.value.message.startswith("build refuses to run: preflight")
