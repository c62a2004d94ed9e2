"""The engine's read-only answers through its CLI (``stagegate.engine``), held against the real
engine and against what python-on-whales reads from it: each reference gets its own image, a
missing image is an absence, and an engine that does not answer is an error — never "absent"."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from python_on_whales import DockerClient
from stagegate import engine
from stagegate.runner import CommandFailed

pytestmark = pytest.mark.docker

DOCKER = ["docker"]
NO_ENGINE = ["docker", "--host", "unix:///nonexistent/stagegate-no-engine.sock"]


@pytest.fixture
def two_images(docker: DockerClient, busybox_image: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two local images with different IDs: the busybox one (tagged once more) and one built on it."""
    base, other = "stagegate-test/engine-queries-base:1", "stagegate-test/engine-queries:1"
    docker.image.tag(busybox_image, base)
    (tmp_path / "Dockerfile").write_text(
        f"FROM {busybox_image}\nLABEL dev.stagegate.test=engine-queries\nONBUILD RUN true\n"
    )
    docker.legacy_build(tmp_path, tags=[other])
    yield base, other
    docker.image.remove([base, other], force=True)


def test_every_reference_gets_its_own_image_in_one_call_or_one_each(
    docker: DockerClient, two_images: tuple[str, str]
) -> None:
    base, other = two_images
    missing = "stagegate-test/never-built:1"
    expected = {ref: docker.image.inspect(ref) for ref in (base, other)}

    for refs in ([base, other], [other, base], [other, missing, base], [missing, base]):
        found = engine.inspect_images(DOCKER, refs)

        assert set(found) == {ref for ref in refs if ref != missing}
        for ref, image in found.items():
            assert image.id == expected[ref].id
            assert image.tags == frozenset(expected[ref].repo_tags)
    assert engine.inspect_images(DOCKER, [missing]) == {}
    assert engine.inspect_images(DOCKER, []) == {}


def test_labels_and_onbuild_triggers_are_read_as_python_on_whales_reads_them(
    docker: DockerClient, two_images: tuple[str, str]
) -> None:
    _, other = two_images
    [image] = engine.inspect_images(DOCKER, [other]).values()
    reference = docker.image.inspect(other)

    assert image.labels == reference.config.labels and image.labels["dev.stagegate.test"] == "engine-queries"
    assert image.on_build == tuple(reference.config.on_build) == ("RUN true",)


def test_an_image_id_is_a_reference_too(docker: DockerClient, busybox_image: str) -> None:
    image_id = docker.image.inspect(busybox_image).id

    assert engine.inspect_images(DOCKER, [image_id])[image_id].id == image_id


def test_an_engine_that_does_not_answer_is_an_error_not_an_absence(busybox_image: str) -> None:
    with pytest.raises(CommandFailed) as failed:
        engine.inspect_images(NO_ENGINE, [busybox_image], sleep=lambda _: None)
    assert failed.value.exit_code not in (None, 0)
    with pytest.raises(CommandFailed):
        engine.version(NO_ENGINE, timeout=30)
    with pytest.raises(CommandFailed) as missing:
        engine.version(["stagegate-no-such-docker-cli"], timeout=30)
    assert missing.value.exit_code is None


def test_versions_and_buildx_are_what_python_on_whales_reads(docker: DockerClient) -> None:
    version = engine.version(DOCKER, timeout=30)
    reference = docker.version()

    assert version.client == reference.client.version
    assert (version.server, version.os, version.arch) == (
        reference.server.version,
        reference.server.os,
        reference.server.arch,
    )
    assert engine.buildx_installed(DOCKER) == docker.buildx.is_installed()


def test_image_ids_match_reference_patterns(docker: DockerClient, two_images: tuple[str, str]) -> None:
    base, other = two_images
    ids = engine.image_ids(DOCKER, ["stagegate-test/engine-queries*:*"])

    assert set(ids) == {docker.image.inspect(ref).id for ref in (base, other)}
    assert len(ids) == len(set(ids))  # one per image, however many tags point at it
    assert engine.image_ids(DOCKER, ["stagegate-test/never-built:*"]) == []
