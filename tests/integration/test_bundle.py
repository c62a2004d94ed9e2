"""Build once, test many without a registry, on the real engine: a build job writes a bundle
(--bundle-out), a test job in a fresh clone continues from it (--bundle-in) — building nothing,
loading the archive and checking every image ID; a failed build's bundle fails the test job at
once with the build's own error; bundles of another commit, another image configuration or
with a changed image ID are refused; on kind (the fakes) the archive goes on in one
``kind load image-archive``."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from python_on_whales import DockerClient

from tests.conftest import ROOT, Repo, remove_images, validate_error_file
from tests.integration.conftest import Fake, run
from tests.integration.test_docker_target import stack as web_stack
from tests.integration.test_kind_target import stack as kind_stack
from tests.integration.test_sessions import nox

pytestmark = pytest.mark.docker

PIPELINE = ("preflight", "build", "verify", "cluster", "deploy", "e2e")
IGNORED = ".stagegate/\n.nox/\n__pycache__/\n"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def commit_all(repo: Repo) -> None:
    repo.write(".gitignore", IGNORED)
    if not (repo.root / ".git").exists():
        git(repo.root, "init", "-q", "-b", "main")
    git(repo.root, "add", "-A")
    git(repo.root, "commit", "-q", "-m", "the stack")


def fresh_clone(repo: Repo, where: Path) -> Repo:
    """A git clone of ``repo`` at another path: the test job's checkout."""
    git(where.parent, "clone", "-q", str(repo.root), str(where))
    return Repo(where)


def chain(repo: Repo, docker, reporter, *argv: str, stages: tuple[str, ...] = PIPELINE) -> int:
    """``nox -s <last stage> -- ARGV`` in-process: every stage in order, stopping at the first failure."""
    for stage in stages:
        code = run(repo, stage, *argv, docker=docker, reporter=reporter)
        if code:
            return code
    return 0


def image_ids(docker: DockerClient, refs: list[str]) -> dict[str, str | None]:
    found = {}
    for ref in refs:
        try:
            found[ref] = docker.image.inspect(ref).id
        except Exception:
            found[ref] = None
    return found


@pytest.fixture
def built(
    repo: Repo, docker, reporter, ns, busybox_image, tmp_path: Path
) -> tuple[Repo, Path, dict[str, str]]:
    """The build job: the docker target's web stack built and verified in its repository, its
    bundle written; then the run's images removed from the engine (only this test's)."""
    web_stack(repo, ns, busybox_image)
    config = repo.root / "pyproject.toml"  # a build arg the environment may set (another image)
    config.write_text(
        config.read_text().replace(
            'context = "app"\n', 'context = "app"\nbuild_args = { X = "${SG_BUNDLE_X:-a}" }\n', 1
        )
    )
    commit_all(repo)
    bundle = tmp_path / "bundle"
    assert chain(repo, docker, reporter, "--bundle-out", str(bundle), stages=PIPELINE[:3]) == 0, (
        reporter.console.file.getvalue()
    )
    images = {
        e["ref"]: e["image_id"] for e in repo.run_record()["stages"]["build"]["outputs"]["images"].values()
    }
    remove_images(docker, ns)
    assert set(image_ids(docker, list(images)).values()) == {None}
    return repo, bundle, images


@pytest.fixture(autouse=True)
def _teardown(docker: DockerClient, ns: str, tmp_path: Path):
    yield
    from stagegate.targets.docker import DockerTarget

    for artifacts in (tmp_path / "repo" / ".stagegate", tmp_path / "clone" / ".stagegate"):
        if artifacts.exists():
            DockerTarget(project=ns, artifacts=artifacts, docker=docker).teardown(delete=True)


def test_a_good_bundle_in_a_fresh_clone_deploys_and_tests_without_building(
    built, docker, reporter, tmp_path: Path
) -> None:
    repo, bundle, images = built
    manifest = json.loads((bundle / "bundle.json").read_text())
    assert sorted(manifest["files"]) == ["images.tar", "run.json"]  # no error: no error.json or junit
    assert [(i["ref"], i["image_id"]) for i in manifest["images"]] == list(images.items())
    clone = fresh_clone(repo, tmp_path / "clone")

    code = chain(clone, docker, reporter, "--target", "docker", "--bundle-in", str(bundle))

    assert code == 0, reporter.console.file.getvalue()
    record = clone.run_record()
    stages = record["stages"]
    assert {s: stages[s]["status"] for s in PIPELINE} == dict.fromkeys(PIPELINE, "passed")
    for stage in ("preflight", "build", "verify"):
        assert stages[stage]["outputs"]["from_bundle"]["run_id"] == manifest["run_id"]
    for stage in ("cluster", "deploy", "e2e"):
        assert "from_bundle" not in stages[stage]["outputs"]
    assert not (clone.artifacts / "logs" / "build").exists()  # no build ran: no build log
    assert stages["build"]["outputs"]["from_bundle"]["loaded"] == {
        e["name"]: e["image_id"] for e in manifest["images"]
    }
    assert image_ids(docker, list(images)) == images  # loaded back with the recorded IDs
    assert stages["e2e"]["outputs"]["tests"]["exit_code"] == 0
    junit = (clone.artifacts / "junit.xml").read_text()
    assert "taken from the bundle" in junit
    assert record["git"]["sha"] == manifest["git"]["sha"]


def test_a_failed_builds_bundle_fails_the_test_job_at_once_with_the_builds_error(
    repo: Repo, ns: str, busybox_image: str, tmp_path: Path
) -> None:
    """Both jobs as users type them (real nox); the test job on a DOCKER_HOST where nothing
    answers: any Docker call would end it with DOCKER_UNAVAILABLE instead."""
    shutil.copy(ROOT / "noxfile.py", repo.root / "noxfile.py")
    shutil.copytree(ROOT / "tasks", repo.root / "tasks", ignore=shutil.ignore_patterns("__pycache__"))
    repo.write("app/Dockerfile", f"FROM {busybox_image}\nRUN exit 3\n")
    repo.config(f'[[tool.stagegate.images]]\nname = "{ns}/app"\ncontext = "app"\n')
    commit_all(repo)
    bundle = tmp_path / "bundle"
    build_job = nox(repo.root, "-s", "build", "--", "--bundle-out", str(bundle))
    assert build_job.returncode == 1, build_job.stderr
    manifest = json.loads((bundle / "bundle.json").read_text())
    assert sorted(manifest["files"]) == ["error.json", "junit.xml", "run.json"]  # nothing built: no archive
    assert manifest["stages"]["build"] == "failed"

    clone = fresh_clone(repo, tmp_path / "clone")
    nowhere = {"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}
    test_job = nox(
        clone.root, "-s", "e2e", "--", "--target", "docker", "--bundle-in", str(bundle), env=nowhere
    )

    assert test_job.returncode == 1
    assert "Traceback" not in test_job.stderr + test_job.stdout
    error = validate_error_file(clone.artifacts / "error.json")
    assert (error["code"], error["stage"]) == ("UPSTREAM_FAILED", "cluster")
    assert error["cause"]["code"] == "BUILD_FAILED"
    assert (error["subject"]["file"], error["subject"]["line"]) == ("app/Dockerfile", 2)
    assert error["subject"]["image"] == f"{ns}/app"
    assert error["log_excerpt"] and error["log_excerpt"] == error["cause"]["log_excerpt"]
    assert error["class"] == "product" and error["retry"] is False  # the build's class, not ours
    junit = (clone.artifacts / "junit.xml").read_text()
    assert "app/Dockerfile:2" in junit and "UPSTREAM_FAILED" in junit
    stages = clone.run_record()["stages"]
    assert [stages[s]["status"] for s in PIPELINE] == [
        "passed",
        "failed",
        "not-run",
        "failed",
        "not-run",
        "not-run",
    ]
    assert stages["build"]["outputs"]["from_bundle"]["run_id"] == manifest["run_id"]
    assert not (clone.artifacts / "logs").exists()  # no build, no cluster, nothing logged
    assert "UPSTREAM_FAILED" in test_job.stderr  # nox's own line names it


def test_a_bundle_of_another_commit_is_refused(built, docker, reporter, tmp_path: Path) -> None:
    repo, bundle, images = built
    clone = fresh_clone(repo, tmp_path / "clone")
    clone.write("NOTES.md", "a later commit\n")
    git(clone.root, "add", "NOTES.md")
    git(clone.root, "commit", "-q", "-m", "later")

    assert chain(clone, docker, reporter, "--bundle-in", str(bundle)) == 1

    error = clone.error()
    assert (error["code"], error["stage"], error["subject"]["key"]) == ("BUNDLE_MISMATCH", "preflight", "git")
    assert error["subject"]["found"] != error["subject"]["expected"]
    assert set(image_ids(docker, list(images)).values()) == {None}  # nothing loaded


def test_a_bundle_of_another_image_configuration_is_refused(
    built, docker, reporter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same commit, a build arg the environment sets otherwise: another image than the bundle's."""
    repo, bundle, images = built
    clone = fresh_clone(repo, tmp_path / "clone")
    monkeypatch.setenv("SG_BUNDLE_X", "b")

    assert chain(clone, docker, reporter, "--bundle-in", str(bundle)) == 1

    error = clone.error()
    assert (error["code"], error["subject"]["key"]) == ("BUNDLE_MISMATCH", "tool.stagegate.images")
    assert set(image_ids(docker, list(images)).values()) == {None}  # nothing loaded


def test_an_archive_holding_another_image_than_recorded_is_refused(
    built, docker, reporter, busybox_image: str, tmp_path: Path
) -> None:
    """The archive replaced, checksum and all, by one whose tag names another image: the IDs
    checked after docker load tell."""
    repo, bundle, images = built
    ref = next(iter(images))
    docker.image.tag(busybox_image, ref)
    docker.image.save(ref, output=bundle / "images.tar")
    docker.image.remove(ref)  # the tag only: the busybox image keeps its own
    manifest = json.loads((bundle / "bundle.json").read_text())
    archive = (bundle / "images.tar").read_bytes()
    manifest["files"]["images.tar"] = {"bytes": len(archive), "sha256": hashlib.sha256(archive).hexdigest()}
    (bundle / "bundle.json").write_text(json.dumps(manifest))
    clone = fresh_clone(repo, tmp_path / "clone")

    assert chain(clone, docker, reporter, "--target", "docker", "--bundle-in", str(bundle)) == 1

    error = clone.error()
    assert (error["code"], error["stage"]) == ("BUNDLE_INVALID", "build")
    assert (error["subject"]["expected"], error["subject"]["found"]) == (
        images[ref],
        docker.image.inspect(ref).id,
    )
    assert error["subject"]["found"] != images[ref]
    assert clone.run_record()["stages"]["cluster"]["status"] == "not-run"


def test_an_image_id_changed_in_bundle_json_alone_is_refused(built, docker, reporter, tmp_path: Path) -> None:
    repo, bundle, images = built
    manifest = json.loads((bundle / "bundle.json").read_text())
    manifest["images"][0]["image_id"] = "sha256:" + "0" * 64
    (bundle / "bundle.json").write_text(json.dumps(manifest))
    clone = fresh_clone(repo, tmp_path / "clone")

    assert chain(clone, docker, reporter, "--target", "docker", "--bundle-in", str(bundle)) == 1

    error = clone.error()
    assert (error["code"], error["stage"], error["subject"]["image"]) == (
        "BUNDLE_INVALID",
        "build",
        manifest["images"][0]["name"],
    )
    assert set(image_ids(docker, list(images)).values()) == {None}  # refused before docker load


def test_on_kind_the_bundle_goes_on_the_node_in_one_image_archive_load(
    repo: Repo, docker, reporter, ns, busybox_image, fake: Fake, cluster_name: str, tmp_path: Path
) -> None:
    kind_stack(repo, ns, busybox_image, cluster=cluster_name)
    repo.write("worker/Dockerfile", f"FROM {busybox_image}\nRUN echo worker > /worker\n")
    config = repo.root / "pyproject.toml"
    config.write_text(
        config.read_text().replace(
            "[tool.stagegate.cluster]",
            f'[[tool.stagegate.images]]\nname = "{ns}/worker"\ncontext = "worker"\n\n[tool.stagegate.cluster]',
            1,
        )
    )
    commit_all(repo)
    bundle = tmp_path / "bundle"
    assert (
        chain(repo, docker, reporter, "--target", "docker", "--bundle-out", str(bundle), stages=PIPELINE[:3])
        == 0
    )
    clone = fresh_clone(repo, tmp_path / "clone")

    assert chain(clone, docker, reporter, "--bundle-in", str(bundle), stages=PIPELINE[:4]) == 0, (
        reporter.console.file.getvalue()
    )

    loads = fake.calls("kind", "load")
    assert len(loads) == 1 and loads[0][:2] == ["load", "image-archive"], loads
    assert loads[0][2] == str(bundle / "images.tar")
    assert loads[0][loads[0].index("--nodes") + 1] == f"{cluster_name}-control-plane"
    load = clone.run_record()["stages"]["cluster"]["outputs"]["load"]
    assert sorted(load["images"]) == [f"{ns}/app", f"{ns}/worker"]
    assert all(entry["loaded_to"] == [f"{cluster_name}-control-plane"] for entry in load["images"].values())

    # the node has both now: a second test run loads nothing
    assert chain(clone, docker, reporter, "--bundle-in", str(bundle), stages=PIPELINE[:4]) == 0
    assert len(fake.calls("kind", "load")) == 1
    load = clone.run_record()["stages"]["cluster"]["outputs"]["load"]
    assert all(entry["loaded_to"] == [] for entry in load["images"].values())
