"""A failed build stops the builds still running (without ``--keep-going``), on the real engine:
the failure is the stage's error, a build cut short is "cancelled" and leaves neither a tag nor
a build container behind, a build that finished stays "built", and nothing but the builds'
own ``docker`` clients is signalled — with the legacy builder and with BuildKit. With
``--keep-going`` nothing is cancelled.

The stage is driven as the pipeline drives it (``tests.integration.test_build_scheduling.Stage``), on
tiny busybox images under this run's TEST_PREFIX, removed at each test's end.
"""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from python_on_whales import DockerClient
from stagegate.errors import Code

from tests.conftest import (
    LABEL_LINE,
    TEST_PREFIX,
    buildkit_client,
    remove_failed_build_steps,
    remove_images_at_the_end,
)
from tests.integration.test_build_scheduling import SHA, Stage, images_config, write

pytestmark = pytest.mark.docker

SLOW_S = 120  # the build that the failure must cut short
# A bound with a huge margin: the cut ends the stage about a second after the failure (one
# `sleep 1` step); without it the stage would wait out the slow build's 120 s.
FAR_LESS_THAN_SLOW_S = 60


@pytest.fixture
def ns(docker: DockerClient) -> Iterator[str]:
    """This test's image names: ``{ns}/…``; every tag of them removed at the end, and the
    untagged step images its failing and cancelled builds left (their Dockerfiles carry
    LABEL_LINE)."""
    prefix = f"{TEST_PREFIX}-{secrets.token_hex(4)}"
    yield prefix
    remove_images_at_the_end(prefix)
    remove_failed_build_steps(docker)


def slow_and_broken(root: Path, ns: str, busybox_image: str, slow_s: int) -> str:
    """Images ``slow`` (a RUN of ``slow_s`` seconds), ``done`` (a COPY) and ``broken`` (a RUN
    that fails after a second, on ``done``: it starts once ``done`` is built, while ``slow``
    still runs). The label that the build containers of this repository carry."""
    mark = f"dev.stagegate.cancel-test={ns}"
    write(
        root,
        {
            "pyproject.toml": images_config(ns, "slow", "done", "broken"),
            "slow/Dockerfile": f"FROM {busybox_image}\n{LABEL_LINE}LABEL {mark}\nRUN sleep {slow_s}\n",
            "done/Dockerfile": f"FROM {busybox_image}\nCOPY data /done\n",
            "done/data": secrets.token_hex(8),
            "broken/Dockerfile": f"FROM {ns}/done\n{LABEL_LINE}LABEL {mark}\nRUN sleep 1 && exit 3\n",
        },
    )
    return mark


def containers_labelled(label: str) -> list[str]:
    """``docker ps -a`` by label: one call (python-on-whales' list inspects each container it
    found, and the engine may be removing one meanwhile)."""
    argv = ["docker", "ps", "--all", "--quiet", "--filter", f"label={label}"]
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30).stdout.split()


def no_container_left(label: str, within_s: float = 30.0) -> list[str]:
    """The build containers still there once the engine had ``within_s`` to remove them (it
    does so as soon as it sees the client gone, well under a second here)."""
    deadline = time.monotonic() + within_s
    while (left := containers_labelled(label)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@pytest.mark.parametrize("builder", ["legacy", "buildkit-client"])
def test_a_failed_build_cancels_the_running_ones(
    tmp_path: Path, docker: DockerClient, busybox_image: str, ns: str, builder: str
) -> None:
    client = docker
    if builder == "buildkit-client":  # BuildKit run by the client itself (no buildx here)
        found = buildkit_client()
        if found is None:
            pytest.skip("no Docker client that runs BuildKit itself (a client before 23.0) on PATH")
        client = DockerClient(client_call=[found])
    root = tmp_path / "repo"
    mark = slow_and_broken(root, ns, busybox_image, SLOW_S)
    started = time.monotonic()
    stage = Stage(root, client, "--jobs", "2", run={"builder": builder, "git": {"sha": SHA}})
    took = time.monotonic() - started
    assert took < FAR_LESS_THAN_SLOW_S, f"the stage waited for the slow build ({took:.1f}s)"

    assert stage.error is not None and stage.error.code == Code.BUILD_FAILED
    assert stage.error.subject["image"] == f"{ns}/broken"
    assert stage.error.subject["exit_code"] == 3
    assert stage.error.others == []  # the cancelled build is no failure of its own
    assert stage.statuses() == {"slow": "cancelled", "done": "built", "broken": "failed"}
    slow = stage.images[f"{ns}/slow"]
    assert slow["detail"] == f"stopped when {ns}/broken failed (--keep-going builds the rest)"
    assert slow["ref"] is None and slow["image_id"] is None
    assert slow["started_s"] is not None and slow["finished_s"] >= stage.images[f"{ns}/broken"]["finished_s"]
    assert f"{ns}/slow: cancelled" in stage.terminal
    log = (root / ".stagegate" / "logs" / "build" / f"{ns}-slow.log").read_text()
    assert log.rstrip().endswith(f"[cancelled: {slow['detail']}]")

    # the cut build left no tag and no build container; the finished one keeps its tags
    assert docker.image.list(filters=[("reference", f"{ns}/slow")]) == []
    assert no_container_left(mark) == []
    done = stage.images[f"{ns}/done"]
    assert docker.image.inspect(done["ref"]).id == done["image_id"]
    assert docker.image.inspect(f"{ns}/done:latest").id == done["image_id"]


def test_keep_going_cancels_nothing(
    tmp_path: Path, docker: DockerClient, busybox_image: str, ns: str
) -> None:
    root = tmp_path / "repo"
    slow_and_broken(root, ns, busybox_image, 4)  # still running when broken fails
    stage = Stage(root, docker, "--jobs", "2", "--keep-going")
    assert stage.error is not None and stage.error.subject["image"] == f"{ns}/broken"
    assert stage.error.others == []
    assert stage.statuses() == {"slow": "built", "done": "built", "broken": "failed"}
    slow, broken = stage.images[f"{ns}/slow"], stage.images[f"{ns}/broken"]
    assert slow["finished_s"] > broken["finished_s"]  # it was running when the failure came
    assert docker.image.inspect(slow["ref"]).id == slow["image_id"]


def test_the_cancellation_signals_nothing_but_the_build_clients(
    tmp_path: Path, docker: DockerClient, busybox_image: str, ns: str
) -> None:
    root = tmp_path / "repo"
    slow_and_broken(root, ns, busybox_image, SLOW_S)
    # a child of this process that is no build of the stage (as a fixture's registry would be)
    bystander = subprocess.Popen(["sleep", "300"])
    try:
        stage = Stage(root, docker, "--jobs", "2")
        assert stage.statuses()["slow"] == "cancelled"  # the cut happened …
        time.sleep(0.5)  # … and a signal sent to the bystander would have ended it by now
        assert bystander.poll() is None, f"the bystander ended with {bystander.returncode}"
    finally:
        bystander.kill()
        bystander.wait()
