"""The e2e stage's verdict on runs that tested nothing, through the real stages on the fake
kind of tests/fakes (the e2e command is a real pytest)."""

from __future__ import annotations

import sys

import pytest

from tests.integration.test_kind_target import chain, stack

pytestmark = pytest.mark.docker

SKIPPING = """\
import os

import pytest


@pytest.mark.skipif("STAGEGATE_URL_NOWHERE" not in os.environ, reason="no STAGEGATE_URL_NOWHERE")
def test_needs_a_service():
    pass


def test_skips_itself():
    pytest.skip("not on this target")
"""

SUITE = f'["{sys.executable}", "-m", "pytest", "e2e", "-q", "-p", "no:cacheprovider"]'


def e2e_stack(repo, ns, busybox_image, cluster, tests: str | None, allow: bool = False) -> None:
    if tests is not None:
        repo.write("e2e/test_stack.py", tests)
    else:
        repo.write("e2e/README", "no tests here\n")
    stack(repo, ns, busybox_image, cluster=cluster, e2e=SUITE)
    if allow:
        path = repo.root / "pyproject.toml"
        path.write_text(path.read_text() + "allow_no_tests = true\n")


@pytest.mark.parametrize(
    ("tests", "message", "skipped"),
    [(None, "the e2e command ran no test", 0), (SKIPPING, "every e2e test was skipped (2 skipped)", 2)],
    ids=["none-collected", "all-skipped"],
)
def test_an_e2e_run_that_executed_no_test_fails(
    repo, docker, busybox_image, reporter, ns, fake, cluster_name, tests, message, skipped
) -> None:
    e2e_stack(repo, ns, busybox_image, cluster_name, tests)
    fake.scenario()
    assert chain(repo, docker, reporter, "cluster", "deploy", "e2e") == 1
    error = repo.error()
    assert (error["stage"], error["code"], error["message"]) == ("e2e", "E2E_NO_TESTS", message)
    assert error["subject"]["skipped"] == skipped
    assert "allow_no_tests" in error["hint"]
    if skipped:
        assert "no STAGEGATE_URL_NOWHERE" in error["hint"]  # the tests' own reason
    output = reporter.console.file.getvalue()
    assert "tests passed" not in output
    assert "no test ran" in output  # the stage table's note


def test_allow_no_tests_lets_an_all_skipped_run_pass(
    repo, docker, busybox_image, reporter, ns, fake, cluster_name
) -> None:
    e2e_stack(repo, ns, busybox_image, cluster_name, SKIPPING, allow=True)
    fake.scenario()
    assert chain(repo, docker, reporter, "cluster", "deploy", "e2e") == 0, reporter.console.file.getvalue()
    assert repo.run_record()["stages"]["e2e"]["outputs"]["tests"]["ran"] == 0
    assert "no test ran — allowed" in reporter.console.file.getvalue()
