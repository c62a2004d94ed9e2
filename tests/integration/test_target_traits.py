"""Preflight judges pull policies as verify does, for kind with and without its local registry:
the manifests check runs after the daemon's, on the real engine. (What the stages know of the
run's target, and the one factory of every target: tests/unit/test_target_traits.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from stagegate.config import Config
from stagegate.dockerclient import DeferredDockerClient
from stagegate.errors import Code
from stagegate.stages.preflight import environment_checks

from tests.unit.test_target_traits import repo

pytestmark = pytest.mark.docker


def _manifest_check(config: Config, target: str) -> list:
    checks = environment_checks(config, DeferredDockerClient({}), ["example/app"], {}, {}, target=target)
    return [check for check in checks if check.name == "manifests"]


@pytest.mark.parametrize(
    ("local_registry", "policy", "passes"),
    [
        (True, "Always", True),  # pulled from kind's local registry: a pull is right
        (True, "Never", False),  # Never keeps it from the registry it is pushed to
        (False, "Always", False),  # only on the nodes: a pull from a registry fails
        (False, "Never", True),
    ],
)
def test_preflight_judges_pull_policies_as_verify_does_for_kind_with_a_local_registry(
    tmp_path: Path, local_registry: bool, policy: str, passes: bool
) -> None:
    """Preflight once judged kind with a local registry as a node-only target: `Always` failed
    a stack verify and the cluster would pass, and `Never` passed one verify then refused."""
    [check] = _manifest_check(repo(tmp_path, local_registry=local_registry, policy=policy), "kind")
    assert check.ok is passes
    if not passes:
        assert check.error is not None and check.error.code is Code.PULL_POLICY_INVALID
