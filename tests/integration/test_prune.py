"""nox -s prune against the real engine: old sg- tags go, the current run's and the newest
stay, and nothing that something else uses is touched."""

from __future__ import annotations

import json
import secrets

import pytest
from python_on_whales import DockerClient
from stagegate import cli

from tests.conftest import Repo
from tests.integration.conftest import image_table

pytestmark = pytest.mark.docker


def sg_image(docker: DockerClient, tmp_path, busybox_image: str, name: str, tag: str, *, label: bool = True):
    """A tiny image tagged ``name:tag``, carrying stagegate's image label (or not)."""
    context = tmp_path / f"ctx-{tag}"
    context.mkdir()
    lines = [f"FROM {busybox_image}", f"LABEL test.token={secrets.token_hex(6)}"]
    if label:
        lines.append(f'LABEL dev.stagegate.image="{name}"')
    (context / "Dockerfile").write_text("\n".join(lines) + "\n")
    return docker.legacy_build(context, tags=[f"{name}:{tag}"], quiet=True).id


def configure(repo: Repo, ns: str, current: str | None = None) -> str:
    name = f"{ns}/app"
    repo.write("app/Dockerfile", "FROM scratch\n")
    repo.config(image_table(ns, ("app", "app")))
    if current:
        run = {"run_id": "r1", "stages": {"build": {"outputs": {"images": {name: {"ref": current}}}}}}
        repo.artifacts.mkdir(parents=True, exist_ok=True)
        (repo.artifacts / "run.json").write_text(json.dumps(run))
    return name


def tags_of(docker: DockerClient, name: str) -> set[str]:
    listed = docker.image.list(filters=[("reference", f"{name}:*")])
    return {tag for image in listed for tag in image.repo_tags if tag.startswith(name + ":")}


def test_prune_keeps_the_current_runs_tag_and_the_newest(
    repo, docker, busybox_image, ns, tmp_path, capsys
) -> None:
    name = f"{ns}/app"
    for n in range(1, 6):  # sg-1 is the oldest
        sg_image(docker, tmp_path, busybox_image, name, f"sg-{n}")
    configure(repo, ns, current=f"{name}:sg-1")
    assert cli.prune(repo.root, ["--keep", "2", "--dry-run"], docker=docker) is None
    assert tags_of(docker, name) == {f"{name}:sg-{n}" for n in range(1, 6)}  # a dry run removes nothing
    assert cli.prune(repo.root, ["--keep", "2"], docker=docker) is None
    assert tags_of(docker, name) == {f"{name}:sg-1", f"{name}:sg-4", f"{name}:sg-5"}
    out = capsys.readouterr().err
    assert "would remove 2 tag(s)" in out
    assert "removed 2 tag(s), kept 3; 2 image(s) deleted, freed" in out


def test_prune_never_removes_an_image_something_else_uses(
    repo, docker, busybox_image, ns, tmp_path, capsys
) -> None:
    name = configure(repo, ns)
    in_use = sg_image(docker, tmp_path, busybox_image, name, "sg-used")
    also_tagged = sg_image(docker, tmp_path, busybox_image, name, "sg-mine")
    docker.image.tag(also_tagged, f"{ns}/other:release")
    sg_image(docker, tmp_path, busybox_image, name, "sg-foreign", label=False)  # not stagegate's
    sg_image(docker, tmp_path, busybox_image, name, "sg-old")
    container = docker.container.create(in_use, ["true"], name=f"{ns}-user")  # stopped, never started
    try:
        assert cli.prune(repo.root, ["--keep", "0"], docker=docker) is None
        assert tags_of(docker, name) == {f"{name}:sg-used", f"{name}:sg-mine", f"{name}:sg-foreign"}
        assert docker.image.exists(f"{ns}/other:release")
        out = capsys.readouterr().err
        assert f"kept {name}:sg-used: the image is used by container {ns}-user" in out
        assert f"kept {name}:sg-mine: the image is also tagged {ns}/other:release" in out
        assert f"removed {name}:sg-old" in out
    finally:
        docker.container.remove(container, force=True)


def test_prune_rejects_unknown_options(repo, ns, docker, capsys) -> None:
    configure(repo, ns)
    failure = cli.prune(repo.root, ["--kep", "2"], docker=docker)
    assert failure == "CONFIG_INVALID: unknown option '--kep'"
    assert "--keep N" in capsys.readouterr().err


def test_the_build_suggests_prune_when_old_sg_images_pile_up(
    repo, docker, busybox_image, ns, tmp_path, reporter
) -> None:
    from tests.integration.conftest import pipeline

    name = f"{ns}/app"
    for n in range(10):
        sg_image(docker, tmp_path, busybox_image, name, f"sg-old{n}")
    repo.write("app/Dockerfile", f"FROM {busybox_image}\nCOPY . /app\n")
    repo.config(image_table(ns, ("app", "app")))
    assert pipeline(repo, docker=docker, reporter=reporter) == 0
    assert "nox -s prune" not in reporter.console.file.getvalue()  # 10 old ones: not yet
    assert pipeline(repo, docker=docker, reporter=reporter) == 0  # up to date: nothing counted
    assert "nox -s prune" not in reporter.console.file.getvalue()
    repo.write("app/edit.txt", "an edit: the first run's image is now an old one too")
    assert pipeline(repo, docker=docker, reporter=reporter) == 0
    shown = reporter.console.file.getvalue()
    assert f"hint: old sg- images pile up: {name} (11); `nox -s prune` removes them" in shown
    assert repo.run_record()["stages"]["build"]["outputs"]["old_sg_images"] == {name: 11}
