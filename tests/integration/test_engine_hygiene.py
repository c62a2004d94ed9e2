"""The suite's own engine hygiene (tests/conftest.py): what the leak check at the end of a run
names, and the failed-build step images the run removes before it looks."""

from __future__ import annotations

from pathlib import Path

import pytest
from python_on_whales import DockerClient

from tests.conftest import LABEL_LINE, TEST_PREFIX, _run_objects, remove_failed_build_steps

pytestmark = pytest.mark.docker


def untagged(docker: DockerClient, tmp_path: Path, busybox_image: str, label_line: str) -> str:
    """A dangling image with ``label_line``, as a failed or repeated build leaves one (built,
    then its tag moved to another image, which is removed again); its ID."""
    tag = f"{TEST_PREFIX}-hygiene/{tmp_path.name.lower()}:1"
    (tmp_path / "Dockerfile").write_text(f"FROM {busybox_image}\n{label_line}RUN echo {tmp_path.name}\n")
    image = docker.legacy_build(tmp_path, tags=[tag])
    (tmp_path / "Dockerfile").write_text(f"FROM {busybox_image}\nRUN echo other {tmp_path.name}\n")
    docker.legacy_build(tmp_path, tags=[tag])
    docker.image.remove(tag)
    assert docker.image.inspect(image.id).repo_tags == []
    return image.id


def test_an_untagged_image_labelled_with_the_runs_prefix_is_named_as_a_leak(
    docker: DockerClient, tmp_path: Path, busybox_image: str
) -> None:
    image = untagged(docker, tmp_path, busybox_image, f"LABEL dev.stagegate.image={TEST_PREFIX}-x/app\n")
    try:
        assert any(image[:19] in entry for entry in _run_objects(docker))
        remove_failed_build_steps(docker)  # not a failed build's step: left for the check to name
        assert docker.image.exists(image)
    finally:
        docker.image.remove(image, force=True)
    assert not any(image[:19] in entry for entry in _run_objects(docker))


def test_the_step_images_of_failing_test_builds_are_removed_before_the_check(
    docker: DockerClient, tmp_path: Path, busybox_image: str
) -> None:
    image = untagged(docker, tmp_path, busybox_image, LABEL_LINE)
    assert any(image[:19] in entry for entry in _run_objects(docker))
    remove_failed_build_steps(docker)
    assert not docker.image.exists(image)
