"""run.json and error.json over a run's life: what a new run holds, what re-running a stage
resets, what the upstream guard says for each upstream status, what record_pass and
record_failure write, and which error file a later stage keeps or removes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
from stagegate import redact
from stagegate.errors import Code, CommandEvidence, StagegateError
from stagegate.ledger import PIPELINE, SCHEMA_VERSION, Ledger, Status

from tests.conftest import SCHEMA
from tests.unit.test_ledger import GIT, fixed_clock


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(tmp_path / "artifacts", fixed_clock())


def passed(ledger: Ledger, *stages: str) -> None:
    for stage in stages:
        ledger.begin(stage, git=GIT, options={})
        ledger.record_pass(stage, 0.1, {})


def upstream_error(ledger: Ledger, stage: str) -> StagegateError:
    with pytest.raises(StagegateError) as caught:
        ledger.begin(stage, git=GIT, options={})
    assert caught.value.code == Code.UPSTREAM_FAILED
    return caught.value


# -- a new run ----------------------------------------------------------------------------------------


def test_a_new_run_has_a_timestamped_id_and_nothing_chosen_yet(ledger: Ledger) -> None:
    run = ledger.begin("preflight", git=GIT, options={"jobs": 2})
    assert re.fullmatch(r"20261128T200000Z-[0-9a-f]{6}", run["run_id"])
    assert (run["schema_version"], run["started_at"], run["git"]) == (
        SCHEMA_VERSION,
        "2026-11-28T20:00:00Z",
        GIT,
    )
    assert (run["target"], run["profile"], run["builder"], run["options"]) == (None, None, None, {"jobs": 2})
    assert run["stages"]["preflight"] == {
        "status": "running",
        "started_at": "2026-11-28T20:00:00Z",
        "duration_s": None,
        "outputs": {},
    }
    assert run["stages"]["e2e"] == {
        "status": "not-run",
        "started_at": None,
        "duration_s": None,
        "outputs": {},
    }
    assert json.loads(ledger.run_path.read_text()) == run


def test_two_runs_have_different_ids(ledger: Ledger) -> None:
    first = ledger.begin("preflight", git=GIT, options={})["run_id"]
    assert ledger.begin("preflight", git=GIT, options={})["run_id"] != first


def test_a_run_json_of_another_schema_or_broken_starts_a_new_run(ledger: Ledger) -> None:
    ledger.artifacts.mkdir(parents=True)
    ledger.run_path.write_text(json.dumps({"schema_version": 0, "run_id": "old", "stages": {}}))
    upstream_error(ledger, "build")  # a new run, in which preflight never ran
    assert ledger.read_run()["run_id"] != "old"
    ledger.run_path.write_text("{not json")
    assert ledger.read_run() is None
    ledger.error_path.write_text("{not json")
    assert ledger.read_error() is None
    ledger.error_path.unlink()  # (the suite checks every error.json a test leaves)


# -- re-running a stage ------------------------------------------------------------------------------


def test_re_running_a_stage_resets_it_and_every_stage_after_it_but_not_those_before(ledger: Ledger) -> None:
    passed(ledger, "preflight", "build", "verify")
    run = ledger.begin("build", git=GIT, options={"only": ["x"]})
    assert run["stages"]["preflight"]["status"] == "passed"
    assert run["stages"]["build"]["status"] == "running"
    assert run["stages"]["verify"] == {
        "status": "not-run",
        "started_at": None,
        "duration_s": None,
        "outputs": {},
    }
    assert run["options"] == {"only": ["x"]}


def test_an_error_file_of_the_stage_or_a_later_one_goes_when_the_stage_begins_again(ledger: Ledger) -> None:
    passed(ledger, "preflight", "build")
    ledger.begin("verify", git=GIT, options={})
    ledger.record_failure("verify", StagegateError(Code.MANIFEST_INVALID, "no", "fix"), 0.1, {})
    ledger.begin("build", git=GIT, options={})  # build is before verify: verify's error is stale
    assert not ledger.error_path.exists()


def test_an_error_file_of_an_earlier_stage_stays_and_becomes_the_cause(ledger: Ledger) -> None:
    passed(ledger, "preflight")
    ledger.begin("build", git=GIT, options={})
    ledger.record_failure("build", StagegateError(Code.BUILD_FAILED, "RUN failed", "fix it"), 0.1, {})
    refusal = upstream_error(ledger, "verify")
    assert ledger.read_error()["stage"] == "build"
    document = ledger.record_failure("verify", refusal, 0.0, {})
    assert (document["stage"], document["cause"]["stage"], document["cause"]["message"]) == (
        "verify",
        "build",
        "RUN failed",
    )


def test_an_error_file_of_another_run_is_no_cause(ledger: Ledger) -> None:
    ledger.begin("preflight", git=GIT, options={})
    ledger.record_failure("preflight", StagegateError(Code.DOCKER_UNAVAILABLE, "down", "start"), 0.1, {})
    previous = ledger.read_error()
    previous["run_id"] = "20260101T000000Z-000000"
    ledger.error_path.write_text(json.dumps(previous))
    document = ledger.record_failure("build", upstream_error(ledger, "build"), 0.0, {})
    assert "cause" not in document


# -- the upstream guard --------------------------------------------------------------------------------


def test_a_skipped_upstream_stage_lets_the_next_one_run(ledger: Ledger) -> None:
    ledger.begin("preflight", git=GIT, options={})
    ledger.record_pass("preflight", 0.1, {}, status=Status.SKIPPED)
    assert ledger.read_run()["stages"]["preflight"]["status"] == "skipped"
    assert ledger.begin("build", git=GIT, options={})["stages"]["build"]["status"] == "running"


@pytest.mark.parametrize(
    ("upstream", "status", "said"),
    [
        ("never", "not-run", "never ran"),
        ("running", "running", "did not finish"),
        ("interrupted", "interrupted", "interrupted"),
    ],
)
def test_the_guard_says_how_the_upstream_stage_ended(
    ledger: Ledger, upstream: str, status: str, said: str
) -> None:
    passed(ledger, "preflight")
    if upstream != "never":
        ledger.begin("build", git=GIT, options={})
    if upstream == "interrupted":
        ledger.record_failure(
            "build", StagegateError(Code.INTERRUPTED, "stop", "again"), 0.1, {}, interrupted=True
        )
    error = upstream_error(ledger, "verify")
    assert error.message == f"verify refuses to run: build {said} in this run"
    assert error.hint == "run `nox -s verify` (it runs build first), or `nox -s build` before this session"
    assert error.subject == {"stage": "build", "status": status}


def test_the_guard_on_a_failed_upstream_points_at_its_cause(ledger: Ledger) -> None:
    passed(ledger, "preflight")
    ledger.begin("build", git=GIT, options={})
    ledger.record_failure("build", StagegateError(Code.BUILD_FAILED, "no", "fix"), 0.1, {})
    error = upstream_error(ledger, "verify")
    assert error.message == "verify refuses to run: build failed in this run"
    assert (
        error.hint
        == "run `nox -s verify` with its prerequisites, or fix build first (see error.json 'cause')"
    )
    assert error.subject == {"stage": "build", "status": "failed"}


def test_the_guard_names_the_first_stage_that_did_not_pass(ledger: Ledger) -> None:
    passed(ledger, "preflight")
    assert upstream_error(ledger, "deploy").subject == {"stage": "build", "status": "not-run"}
    assert ledger.read_run()["stages"]["deploy"]["status"] == "not-run"  # refused: never started


# -- record_pass and record_failure -----------------------------------------------------------------


def test_record_pass_keeps_outputs_and_lifts_builder_and_target_to_the_run(ledger: Ledger) -> None:
    ledger.begin("preflight", git=GIT, options={})
    ledger.record_pass(
        "preflight", 1.23456, {"builder": "buildkit", "target": "kind", "tools": {"kind": "0.27"}}
    )
    run = ledger.read_run()
    assert run["stages"]["preflight"]["duration_s"] == 1.235
    assert run["stages"]["preflight"]["outputs"] == {
        "builder": "buildkit",
        "target": "kind",
        "tools": {"kind": "0.27"},
    }
    assert (run["builder"], run["target"]) == ("buildkit", "kind")
    assert "tools" not in run


def test_record_failure_writes_the_stage_and_the_whole_error_document(ledger: Ledger) -> None:
    passed(ledger, "preflight", "build", "verify", "cluster", "deploy")
    ledger.begin("e2e", git=GIT, options={})
    error = StagegateError(
        Code.E2E_FAILED,
        "2 tests failed",
        "see e2e-junit.xml",
        {"failed": 2},
        command=CommandEvidence(["pytest", "e2e"], 1),
        log_excerpt="FAILED test_api",
        log_file=".stagegate/logs/e2e.log",
    )
    document = ledger.record_failure("e2e", error, 9.87654, {"target": "docker"})
    assert document == {
        "schema_version": SCHEMA_VERSION,
        "run_id": ledger.read_run()["run_id"],
        "stage": "e2e",
        "code": "E2E_FAILED",
        "class": "product",
        "retry": False,
        "message": "2 tests failed",
        "hint": "see e2e-junit.xml",
        "subject": {"failed": 2},
        "command": {"argv": ["pytest", "e2e"], "exit_code": 1},
        "log_excerpt": "FAILED test_api",
        "log_file": ".stagegate/logs/e2e.log",
        "failed_at": "2026-11-28T20:00:00Z",
        "duration_s": 9.877,
        "not_run": [],
        "git": GIT,
    }
    jsonschema.validate(document, SCHEMA)
    stage = ledger.read_run()["stages"]["e2e"]
    assert (stage["status"], stage["duration_s"], stage["outputs"]) == ("failed", 9.877, {"target": "docker"})
    assert stage["error"] == {"code": "E2E_FAILED", "message": "2 tests failed"}
    assert ledger.read_run()["target"] == "docker"


def test_a_failure_without_a_command_records_none_and_a_refused_stage_gets_a_start(ledger: Ledger) -> None:
    refusal = upstream_error(ledger, "build")
    assert ledger.read_run()["stages"]["build"]["started_at"] is None
    document = ledger.record_failure("build", refusal, 0.0, {})
    assert (document["command"], document["log_file"], document["log_excerpt"]) == (None, None, "")
    assert "others" not in document
    assert document["not_run"] == ["verify", "cluster", "deploy", "e2e"]
    assert ledger.read_run()["stages"]["build"]["started_at"] == "2026-11-28T20:00:00Z"


def test_the_error_file_never_holds_a_secret_in_clear(ledger: Ledger) -> None:
    secret = "sgsecret-" + "7" * 16
    redact.register(secret)
    try:
        ledger.begin("preflight", git=GIT, options={})
        error = StagegateError(
            Code.DOCKER_UNAVAILABLE, f"login with {secret} failed", "again", {"token": secret}
        )
        document = ledger.record_failure("preflight", error, 0.1, {})
    finally:
        redact.SECRETS.clear()
    assert secret not in json.dumps(document)
    assert secret not in ledger.error_path.read_text() + ledger.run_path.read_text()
    assert document["message"] == "login with <redacted> failed"


def test_a_run_json_that_vanished_mid_run_is_a_bug_not_a_new_run(ledger: Ledger) -> None:
    ledger.begin("preflight", git=GIT, options={})
    ledger.run_path.unlink()
    with pytest.raises(RuntimeError, match="vanished during the run"):
        ledger.record_pass("preflight", 0.1, {})


def test_every_stage_after_a_failed_one_is_listed_as_not_run(ledger: Ledger) -> None:
    passed(ledger, "preflight", "build")
    ledger.begin("verify", git=GIT, options={})
    document = ledger.record_failure("verify", StagegateError(Code.MANIFEST_INVALID, "x", "y"), 0.1, {})
    assert document["not_run"] == list(PIPELINE[3:])


def test_run_json_is_indented_json_ending_in_a_newline_for_people_reading_it(ledger: Ledger) -> None:
    run = ledger.begin("preflight", git=GIT, options={"jobs": 2})
    assert ledger.run_path.read_text() == json.dumps(run, indent=2) + "\n"


def test_a_refused_first_stage_still_leaves_a_complete_run_json(ledger: Ledger) -> None:
    upstream_error(ledger, "build")
    run = json.loads(ledger.run_path.read_text())
    assert (run["options"], run["target"], run["builder"], run["profile"]) == ({}, None, None, None)
    assert list(run["stages"]) == list(PIPELINE)


def test_atomic_writes_create_the_missing_directories(tmp_path: Path) -> None:
    from stagegate.ledger import write_json_atomic

    target = tmp_path / "logs" / "build" / "inputs.json"
    write_json_atomic(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}


def test_a_new_run_never_deletes_through_a_symlinked_diagnostics_dir(ledger: Ledger, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("not the run's")
    ledger.artifacts.mkdir(parents=True)
    (ledger.artifacts / "diagnostics").symlink_to(elsewhere, target_is_directory=True)
    ledger.begin("preflight", git=GIT, options={})
    assert (elsewhere / "keep.txt").read_text() == "not the run's"
