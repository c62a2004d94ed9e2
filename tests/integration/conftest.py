"""Helpers of the integration tests: stages run in-process on scratch repositories."""

from __future__ import annotations

import os
import secrets

import pytest
from python_on_whales import DockerClient
from stagegate.pipeline import run_stage
from stagegate.ui import Reporter

from tests.conftest import TEST_PREFIX, Repo

# Never inherited by the runs of a test: its own artifacts dir, and no annotations or job
# summary in the CI that runs the tests (the failures here are on purpose).
ISOLATED = ("STAGEGATE_ARTIFACTS", "GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY")


def run(repo: Repo, stage: str, *argv: str, docker: DockerClient, reporter: Reporter) -> int:
    env = {k: v for k, v in os.environ.items() if k not in ISOLATED}
    return run_stage(stage, list(argv), root=repo.root, reporter=reporter, docker=docker, env=env)


def pipeline(repo: Repo, *argv: str, docker: DockerClient, reporter: Reporter) -> int:
    """preflight then build, as ``nox -s build`` runs them."""
    return run(repo, "preflight", *argv, docker=docker, reporter=reporter) or run(
        repo, "build", *argv, docker=docker, reporter=reporter
    )


def images(repo: Repo) -> dict[str, dict]:
    return repo.run_record()["stages"]["build"]["outputs"]["images"]


def unique_prefix() -> str:
    """Image names of one test (under this run's prefix), so that tests never see each
    other's tags, nor those of another checkout's run on the same engine."""
    return f"{TEST_PREFIX}-{secrets.token_hex(4)}"


@pytest.fixture
def ns() -> str:
    return unique_prefix()


def remove_images(docker: DockerClient, ns: str) -> None:
    """Every tag of the images named ``{ns}/…``: ``docker image ls`` by reference pattern, so
    only one test's images, whatever else the engine is doing meanwhile."""
    listed = docker.image.list(filters=[("reference", f"{ns}/*")])
    tagged = [tag for image in listed for tag in image.repo_tags if tag.startswith(ns + "/")]
    if tagged:
        docker.image.remove(tagged, force=True)


@pytest.fixture(autouse=True)
def _remove_test_images(docker: DockerClient, ns: str):
    yield
    remove_images(docker, ns)


def image_table(ns: str, *entries: tuple[str, str]) -> str:
    return "".join(
        f'[[tool.stagegate.images]]\nname = "{ns}/{name}"\ncontext = "{context}"\n\n'
        for name, context in entries
    )
