"""The bundle without a daemon: what it holds and how it is replaced, what makes one invalid or
of another checkout, and how a failed run's bundle becomes the test job's UPSTREAM_FAILED."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from stagegate.bundle import (
    UpstreamInBundle,
    check_matches,
    config_fingerprint,
    open_bundle,
    upstream_failure,
    write_bundle,
)
from stagegate.config import load_config
from stagegate.errors import Code, CommandEvidence, StagegateError
from stagegate.ledger import Ledger
from stagegate.pipeline import run_stage

from tests.conftest import Repo


class NotADockerClient:
    """Nothing here may touch Docker; any use of this fails loudly."""


SHA = "a" * 40


def stack(repo: Repo, build_args: str = "") -> None:
    repo.write("app/Dockerfile", "FROM scratch\nCOPY x /x\n")
    repo.write("app/x", "x")
    repo.config(f'[[tool.stagegate.images]]\nname = "t/app"\ncontext = "app"\n{build_args}')


def failed_build_run(artifacts: Path, git: dict | None = None) -> Ledger:
    """A run whose build failed at app/Dockerfile line 2 (as the build stage records it)."""
    ledger = Ledger(artifacts)
    ledger.begin("preflight", git=git or {"sha": SHA, "dirty": False}, options={})
    ledger.record_pass("preflight", 0.1, {})
    ledger.begin("build", git={}, options={})
    ledger.record_failure(
        "build",
        StagegateError(
            Code.BUILD_FAILED,
            "t/app: COPY failed: file not found in build context",
            "fix the COPY line",
            {"image": "t/app", "file": "app/Dockerfile", "line": 2},
            command=CommandEvidence(["docker", "build", "app"], 1),
            log_excerpt="Step 2/2 : COPY x /x\nCOPY failed",
        ),
        1.5,
        {"images": {"t/app": {"status": "failed"}}},
    )
    return ledger


def test_the_fingerprint_is_the_same_in_two_clones_and_changes_with_the_images_settings(
    tmp_path: Path,
) -> None:
    one, two, other = Repo(tmp_path / "one"), Repo(tmp_path / "elsewhere" / "two"), Repo(tmp_path / "three")
    for repo in (one, two):
        stack(repo, 'build_args = { X = "1" }\n')
    stack(other, 'build_args = { X = "2" }\n')
    assert config_fingerprint(load_config(one.root, {})) == config_fingerprint(load_config(two.root, {}))
    assert config_fingerprint(load_config(one.root, {})) != config_fingerprint(load_config(other.root, {}))


def test_a_secret_build_args_value_is_not_part_of_the_fingerprint(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    stack(repo, 'build_args = { NPM_TOKEN = "${TOKEN}" }\n')
    first = config_fingerprint(load_config(repo.root, {"TOKEN": "s3cret-value-one"}))
    assert first == config_fingerprint(load_config(repo.root, {"TOKEN": "s3cret-value-two"}))


def test_a_failed_runs_bundle_holds_the_records_and_no_archive_and_is_replaced_whole(tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    failed_build_run(artifacts)
    (artifacts / "junit.xml").write_text("<testsuites/>")
    dest = tmp_path / "bundle"
    dest.mkdir()
    (dest / "bundle.json").write_text("{}")  # an earlier bundle
    (dest / "stale.txt").write_text("from the earlier bundle")

    manifest = write_bundle(dest, artifacts, NotADockerClient(), config=None)

    assert sorted(p.name for p in dest.iterdir()) == ["bundle.json", "error.json", "junit.xml", "run.json"]
    assert manifest.images == [] and manifest.stages["build"] == "failed"
    assert json.loads((dest / "bundle.json").read_text())["git"]["sha"] == SHA
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_a_directory_that_is_not_a_bundle_is_never_replaced(tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    failed_build_run(artifacts)
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "notes.txt").write_text("keep me")
    with pytest.raises(StagegateError) as refused:
        write_bundle(dest, artifacts, NotADockerClient(), config=None)
    assert refused.value.code == Code.BUNDLE_INVALID
    assert (dest / "notes.txt").read_text() == "keep me"


def test_a_missing_or_changed_bundle_is_invalid_and_a_whole_one_opens(tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    failed_build_run(artifacts)
    dest = tmp_path / "bundle"
    with pytest.raises(StagegateError) as missing:
        open_bundle(dest)
    assert missing.value.code == Code.BUNDLE_INVALID and "bundle.json is missing" in missing.value.message

    write_bundle(dest, artifacts, NotADockerClient(), config=None)
    opened = open_bundle(dest)
    assert opened.error["code"] == "BUILD_FAILED" and opened.archive is None

    run = json.loads((dest / "run.json").read_text())
    run["git"]["sha"] = "b" * 40
    (dest / "run.json").write_text(json.dumps(run))
    with pytest.raises(StagegateError) as changed:
        open_bundle(dest)
    assert changed.value.code == Code.BUNDLE_INVALID and "run.json is not the file" in changed.value.message


@pytest.mark.parametrize(
    ("theirs", "mine", "key"),
    [
        ({"sha": SHA, "dirty": False}, {"sha": "b" * 40, "dirty": False}, "git"),
        ({"sha": SHA, "dirty": True}, {"sha": SHA, "dirty": False}, "git"),
        ({"sha": None, "dirty": None}, {"sha": SHA, "dirty": False}, "git"),
    ],
)
def test_another_commit_a_dirty_or_unknown_one_is_a_mismatch(tmp_path: Path, theirs, mine, key) -> None:
    repo = Repo(tmp_path / "repo")
    stack(repo)
    failed_build_run(tmp_path / "artifacts", git=theirs)
    write_bundle(
        tmp_path / "bundle", tmp_path / "artifacts", NotADockerClient(), config=load_config(repo.root, {})
    )
    with pytest.raises(StagegateError) as refused:
        check_matches(open_bundle(tmp_path / "bundle"), mine, load_config(repo.root, {}))
    assert (refused.value.code, refused.value.subject["key"]) == (Code.BUNDLE_MISMATCH, key)


def test_the_same_commit_and_configuration_match(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    stack(repo)
    failed_build_run(tmp_path / "artifacts")
    write_bundle(
        tmp_path / "bundle", tmp_path / "artifacts", NotADockerClient(), config=load_config(repo.root, {})
    )
    check_matches(open_bundle(tmp_path / "bundle"), {"sha": SHA, "dirty": False}, load_config(repo.root, {}))


def test_a_failed_build_becomes_upstream_failed_with_the_builds_file_line_and_cause(tmp_path: Path) -> None:
    failed_build_run(tmp_path / "artifacts")
    write_bundle(tmp_path / "bundle", tmp_path / "artifacts", NotADockerClient(), config=None)

    failure = upstream_failure(open_bundle(tmp_path / "bundle"))

    assert isinstance(failure, UpstreamInBundle) and failure.code == Code.UPSTREAM_FAILED
    assert (failure.subject["file"], failure.subject["line"], failure.subject["image"]) == (
        "app/Dockerfile",
        2,
        "t/app",
    )
    assert failure.log_excerpt == "Step 2/2 : COPY x /x\nCOPY failed"
    assert failure.cause["code"] == "BUILD_FAILED"
    assert [failure.taken[s]["status"] for s in ("preflight", "build")] == ["passed", "failed"]
    assert "verify" not in failure.taken


def test_a_bundle_written_before_verify_is_invalid_and_one_after_it_passes(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "artifacts")
    ledger.begin("preflight", git={"sha": SHA, "dirty": False}, options={})
    ledger.record_pass("preflight", 0.1, {})
    ledger.begin("build", git={}, options={})
    ledger.record_pass("build", 0.1, {"images": {}})
    write_bundle(tmp_path / "bundle", tmp_path / "artifacts", NotADockerClient(), config=None)
    with pytest.raises(StagegateError) as early:
        upstream_failure(open_bundle(tmp_path / "bundle"))
    assert early.value.code == Code.BUNDLE_INVALID and "verify" in early.value.message

    ledger.begin("verify", git={}, options={})
    ledger.record_pass("verify", 0.1, {})
    write_bundle(tmp_path / "bundle", tmp_path / "artifacts", NotADockerClient(), config=None)
    assert upstream_failure(open_bundle(tmp_path / "bundle")) is None


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def test_the_gate_records_a_failed_bundle_as_clusters_upstream_failed_without_docker(
    tmp_path: Path, reporter
) -> None:
    repo = Repo(tmp_path / "repo")
    stack(repo)
    repo.write(".gitignore", ".stagegate/\n")
    git(repo.root, "init", "-q")
    git(repo.root, "add", "-A")
    git(repo.root, "commit", "-q", "-m", "x")
    sha = git(repo.root, "rev-parse", "HEAD").strip()
    failed_build_run(tmp_path / "build-job", git={"sha": sha, "dirty": False})
    write_bundle(
        tmp_path / "bundle", tmp_path / "build-job", NotADockerClient(), config=load_config(repo.root, {})
    )

    code = run_stage(
        "preflight",
        ["--bundle-in", str(tmp_path / "bundle")],
        root=repo.root,
        reporter=reporter,
        docker=NotADockerClient(),
        env={},
    ).exit_code

    assert code == 1
    error = repo.error()
    assert (error["stage"], error["code"], error["class"], error["retry"]) == (
        "cluster",
        "UPSTREAM_FAILED",
        "product",
        False,
    )
    assert error["cause"]["code"] == "BUILD_FAILED" and error["subject"]["line"] == 2
    assert error["not_run"] == ["deploy", "e2e"]
    stages = repo.run_record()["stages"]
    assert {s: r["status"] for s, r in stages.items()} == {
        "preflight": "passed",
        "build": "failed",
        "verify": "not-run",
        "cluster": "failed",
        "deploy": "not-run",
        "e2e": "not-run",
    }
    assert "app/Dockerfile:2" in (repo.artifacts / "junit.xml").read_text()


def test_the_bundle_takes_every_image_the_build_leaves_on_this_engine() -> None:
    """The build statuses whose image is local (pulled from the registry cache too) go into the
    archive; "in the registry" (the existing target, nothing pulled) cannot, and no failure may."""
    from stagegate import imagerecord

    assert set(imagerecord.LOCAL) == set(imagerecord.USABLE) - {imagerecord.IN_REGISTRY}
