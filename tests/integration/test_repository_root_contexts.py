"""Images built from the repository root (``context = "."``) on the real engine: stagegate's
own artifacts dir and nox's environments change during every run, yet a second build is
"up to date" and verify passes — whether or not ``.dockerignore`` excludes them. And an
image's inputs are the files its ``COPY``/``ADD`` sources take: an edit anywhere else in the
repository (manifests, README, tests) leaves it up to date, unless its Dockerfile copies the
whole context or cannot be read for certain."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from python_on_whales import DockerClient
from stagegate.dockerclient import docker_client

from tests.conftest import ROOT, Repo, buildkit_client
from tests.integration.conftest import ISOLATED, run

pytestmark = pytest.mark.docker

NAMES = ("api", "worker", "tools")


def root_stack(repo: Repo, ns: str, busybox_image: str, *, dockerignore: str | None, artifacts: str) -> Path:
    """Three images, one repository-root context, each copying all of it; a nox env beside."""
    for name in NAMES:
        repo.write(f"images/{name}/Dockerfile", f"FROM {busybox_image}\nCOPY . /src\n")
    repo.write("src/app.txt", "v1")
    repo.write(".nox/tests/bin/python", "#!/bin/sh\n")  # what `nox -s tests` leaves behind
    if dockerignore is not None:
        repo.write(".dockerignore", dockerignore)
    repo.config(
        f'artifacts = "{artifacts}"\n\n'
        + "".join(
            f'[[tool.stagegate.images]]\nname = "{ns}/{name}"\ncontext = "."\n'
            f'dockerfile = "images/{name}/Dockerfile"\n\n'
            for name in NAMES
        )
    )
    return repo.root / artifacts


def stage(repo: Repo, name: str, docker: DockerClient, reporter) -> int:
    return run(repo, name, docker=docker, reporter=reporter)


def outputs(artifacts: Path, stage_name: str) -> dict:
    return json.loads((artifacts / "run.json").read_text())["stages"][stage_name]["outputs"]


@pytest.mark.parametrize(
    ("dockerignore", "artifacts", "warned"),
    [
        (None, ".stagegate", [".nox", ".stagegate"]),
        ("# unrelated\n*.tmp\n", "build/sg", [".nox", "build/sg"]),
        (".stagegate\n.nox\n", ".stagegate", []),
    ],
    ids=["no-dockerignore", "artifacts-elsewhere-not-ignored", "both-ignored"],
)
def test_a_second_build_is_up_to_date_and_verify_passes(
    repo, docker, busybox_image, reporter, ns, dockerignore, artifacts, warned
) -> None:
    artifacts_dir = root_stack(repo, ns, busybox_image, dockerignore=dockerignore, artifacts=artifacts)

    assert stage(repo, "preflight", docker, reporter) == 0
    assert stage(repo, "build", docker, reporter) == 0
    assert {e["status"] for e in outputs(artifacts_dir, "build")["images"].values()} == {"built"}
    (repo.root / ".nox" / "tests" / "bin" / "pip").write_text("")  # nox changes its env meanwhile

    reporter.console.file.seek(0)
    reporter.console.file.truncate()
    assert stage(repo, "preflight", docker, reporter) == 0
    printed = " ".join(reporter.console.file.getvalue().split())  # as one line, however wrapped
    assert stage(repo, "build", docker, reporter) == 0
    build = outputs(artifacts_dir, "build")
    assert {e["status"] for e in build["images"].values()} == {"up to date"}
    assert build["hashing"]["walks"] == 1  # three images, one context, one walk

    assert stage(repo, "verify", docker, reporter) == 0, (artifacts_dir / "error.json").read_text()
    verify = outputs(artifacts_dir, "verify")
    assert all(e["checks"] == ["present", "platform", "current"] for e in verify["images"].values())
    assert verify["hashing"]["walks"] == 1

    # the preflight warning: named context and images, the exact lines to add
    if warned:
        names = ", ".join(f"{ns}/{name}" for name in NAMES)
        assert f"! warning: build context ./ of {names}: Docker would send" in printed
        lines = printed.split("add these lines at the end of .dockerignore: ")[1].split()
        assert lines[: len(warned)] == warned
        assert len(outputs(artifacts_dir, "preflight")["warnings"]) == 1
    else:
        assert "warning" not in printed
        assert "warnings" not in outputs(artifacts_dir, "preflight")


def test_a_real_source_change_is_still_seen_through_the_cache(
    repo, docker, busybox_image, reporter, ns
) -> None:
    artifacts_dir = root_stack(repo, ns, busybox_image, dockerignore=None, artifacts=".stagegate")
    assert stage(repo, "preflight", docker, reporter) == 0
    assert stage(repo, "build", docker, reporter) == 0
    first = outputs(artifacts_dir, "build")["images"]

    repo.write("src/app.txt", "v2")  # same size, written right after the build
    assert stage(repo, "verify", docker, reporter) == 1
    error = json.loads((artifacts_dir / "error.json").read_text())
    assert (error["code"], error["subject"]["file"]) == ("IMAGE_STALE", "src/app.txt")
    assert "src/app.txt changed" in error["message"]

    assert stage(repo, "preflight", docker, reporter) == 0
    assert stage(repo, "build", docker, reporter) == 0
    second = outputs(artifacts_dir, "build")["images"]
    assert {e["status"] for e in second.values()} == {"built"}
    ref = second[f"{ns}/api"]["ref"]
    assert ref != first[f"{ns}/api"]["ref"]
    assert docker.run(ref, ["cat", "/src/src/app.txt"], remove=True).strip() == "v2"


def nox(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in (*ISOLATED, "NO_COLOR")}
    return subprocess.run(
        [sys.executable, "-m", "nox", "--no-color", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_sessions_build_twice_and_verify_a_repository_root_context(repo, busybox_image, ns) -> None:
    """The issue's "done when", as a user types it: `nox -s build` twice, then `nox -s verify`."""
    shutil.copy(ROOT / "noxfile.py", repo.root / "noxfile.py")
    shutil.copytree(ROOT / "tasks", repo.root / "tasks", ignore=shutil.ignore_patterns("__pycache__"))
    root_stack(repo, ns, busybox_image, dockerignore=None, artifacts=".stagegate")

    first = nox(repo.root, "-s", "build")
    assert first.returncode == 0, first.stderr
    second = nox(repo.root, "-s", "build")
    assert second.returncode == 0, second.stderr
    for name in NAMES:
        assert f"{ns}/{name}: up to date" in second.stderr
    assert "warning: build context ./" in second.stderr
    verified = nox(repo.root, "-s", "verify")
    assert verified.returncode == 0, verified.stderr
    assert "IMAGE_STALE" not in verified.stderr


# -- inputs are what COPY/ADD take ------------------------------------------------------------

COPIES = {  # image -> Dockerfile after FROM
    "api": "COPY src/api/ /app/\nCOPY conf/*.yaml /etc/app/\n",
    "worker": "COPY ./src/worker /app\n",
    "whole": "COPY . /src\n",
    "argsrc": "ARG SRC=src/worker\nCOPY ${SRC} /app\n",
}
OUTSIDE = ("k8s/deployment.yaml", "README.md", "tests/test_api.py", "conf/notes.txt", "src/api/scratch.tmp")


def copy_stack(repo: Repo, ns: str, busybox_image: str, images: tuple[str, ...] = tuple(COPIES)) -> Path:
    """Repository-root images copying parts of it, beside manifests, a README and tests."""
    for name in images:
        repo.write(f"images/{name}/Dockerfile", f"FROM {busybox_image}\n{COPIES[name]}")
    for relpath in ("src/api/app.txt", "src/worker/run.sh", "conf/app.yaml", *OUTSIDE):
        repo.write(relpath, "v1\n")
    repo.write(".dockerignore", ".stagegate\n.nox\n**/*.tmp\n")
    repo.config(
        "".join(
            f'[[tool.stagegate.images]]\nname = "{ns}/{name}"\ncontext = "."\n'
            f'dockerfile = "images/{name}/Dockerfile"\n\n'
            for name in images
        )
    )
    return repo.root / ".stagegate"


def statuses(artifacts: Path, ns: str) -> dict[str, str]:
    images = outputs(artifacts, "build")["images"]
    return {name.removeprefix(f"{ns}/"): entry["status"] for name, entry in images.items()}


def test_an_edit_outside_every_copy_source_leaves_the_images_up_to_date(
    repo, docker, busybox_image, reporter, ns
) -> None:
    artifacts = copy_stack(repo, ns, busybox_image)
    assert stage(repo, "preflight", docker, reporter) == 0
    assert stage(repo, "build", docker, reporter) == 0
    assert set(statuses(artifacts, ns).values()) == {"built"}
    first = outputs(artifacts, "build")["images"]

    for relpath in OUTSIDE:  # a manifest, the README, a test, a file beside the glob, an ignored one
        repo.write(relpath, "v2\n")
    assert stage(repo, "verify", docker, reporter) == 1  # the whole-context images see it
    error = json.loads((artifacts / "error.json").read_text())
    assert error["code"] == "IMAGE_STALE" and error["subject"]["image"] in (f"{ns}/whole", f"{ns}/argsrc")
    assert stage(repo, "build", docker, reporter) == 0
    assert statuses(artifacts, ns) == {
        "api": "up to date",
        "worker": "up to date",
        "whole": "built",
        "argsrc": "built",
    }
    second = outputs(artifacts, "build")["images"]
    assert second[f"{ns}/api"]["ref"] == first[f"{ns}/api"]["ref"]
    assert stage(repo, "verify", docker, reporter) == 0, (artifacts / "error.json").read_text()


def test_an_edit_inside_a_copied_folder_or_glob_rebuilds_and_verify_names_it(
    repo, docker, busybox_image, reporter, ns
) -> None:
    artifacts = copy_stack(repo, ns, busybox_image, ("api", "worker"))
    assert stage(repo, "preflight", docker, reporter) == 0
    assert stage(repo, "build", docker, reporter) == 0

    repo.write("src/api/app.txt", "v2\n")  # same size, right after the build
    assert stage(repo, "verify", docker, reporter) == 1
    error = json.loads((artifacts / "error.json").read_text())
    assert (error["code"], error["subject"]["image"], error["subject"]["file"]) == (
        "IMAGE_STALE",
        f"{ns}/api",
        "src/api/app.txt",
    )
    assert stage(repo, "build", docker, reporter) == 0
    assert statuses(artifacts, ns) == {"api": "built", "worker": "up to date"}
    ref = outputs(artifacts, "build")["images"][f"{ns}/api"]["ref"]
    assert docker.run(ref, ["cat", "/app/app.txt"], remove=True).strip() == "v2"

    repo.write("conf/app.yaml", "v2\n")  # taken by the glob conf/*.yaml
    assert stage(repo, "build", docker, reporter) == 0
    assert statuses(artifacts, ns) == {"api": "built", "worker": "up to date"}
    ref = outputs(artifacts, "build")["images"][f"{ns}/api"]["ref"]
    assert docker.run(ref, ["cat", "/etc/app/app.yaml"], remove=True).strip() == "v2"


def test_a_bind_mount_of_the_context_makes_all_of_it_an_input(
    repo, busybox_image, reporter, ns, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = buildkit_client()
    if client is None:
        pytest.skip("no Docker client that runs BuildKit itself (a client before 23.0) on PATH")
    monkeypatch.setenv("STAGEGATE_DOCKER", client)
    docker = docker_client()
    copy_stack(repo, ns, busybox_image, ("api",))
    repo.write(
        "images/mounted/Dockerfile",
        f"FROM {busybox_image}\nCOPY src/api/ /app/\nRUN --mount=type=bind,target=/ctx cat /ctx/README.md > /readme\n",
    )
    repo.config(
        "".join(
            f'[[tool.stagegate.images]]\nname = "{ns}/{name}"\ncontext = "."\n'
            f'dockerfile = "images/{name}/Dockerfile"\n\n'
            for name in ("api", "mounted")
        )
    )
    assert stage(repo, "preflight", docker, reporter) == 0
    assert stage(repo, "build", docker, reporter) == 0

    repo.write("README.md", "v2\n")  # no COPY takes it; the bind mount reads it
    assert stage(repo, "build", docker, reporter) == 0
    assert statuses(repo.artifacts, ns) == {"api": "up to date", "mounted": "built"}
    ref = outputs(repo.artifacts, "build")["images"][f"{ns}/mounted"]["ref"]
    assert docker.run(ref, ["cat", "/readme"], remove=True).strip() == "v2"


def test_what_a_bases_onbuild_trigger_copies_is_an_input_of_the_image_built_on_it(
    repo, docker, busybox_image, reporter, ns
) -> None:
    copy_stack(repo, ns, busybox_image, ())
    repo.write("images/base/Dockerfile", f"FROM {busybox_image}\nONBUILD COPY . /src\n")
    repo.write("images/app/Dockerfile", f"FROM {ns}/base\nCOPY src/api/ /app/\n")
    repo.config(
        "".join(
            f'[[tool.stagegate.images]]\nname = "{ns}/{name}"\ncontext = "."\n'
            f'dockerfile = "images/{name}/Dockerfile"\n\n'
            for name in ("base", "app")
        )
    )
    assert stage(repo, "preflight", docker, reporter) == 0
    assert stage(repo, "build", docker, reporter) == 0

    repo.write("README.md", "v2\n")  # no COPY of app's own takes it; the base's trigger does
    assert stage(repo, "build", docker, reporter) == 0
    assert statuses(repo.artifacts, ns) == {"base": "up to date", "app": "built"}
    ref = outputs(repo.artifacts, "build")["images"][f"{ns}/app"]["ref"]
    assert docker.run(ref, ["cat", "/src/README.md"], remove=True).strip() == "v2"
