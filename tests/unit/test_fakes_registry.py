"""The fake kind with a local registry, as kind documents it (https://kind.sigs.k8s.io/docs/user/
local-registry/, KEP-1755), where no engine is needed: the Docker network of the nodes is
``$KIND_EXPERIMENTAL_DOCKER_NETWORK`` (else ``kind``), the kind config's
``containerdConfigPatches`` merge into the node's containerd config as kind merges them, and
patches that are not strings are refused. On the real engine (the node's network, its config
file, pulls through hosts.toml from a registry container): tests/integration/test_fakes_registry.py.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.conftest import KIND_NETWORK, TEST_PREFIX
from tests.fakes.fake_k8s.node import kind_network, patched_containerd_config, toml_text
from tests.unit.test_fakes import Fakes, refused

CERTS_DIR = "/etc/containerd/certs.d"
# kind's documented patch (and stagegate's): containerd reads a hosts.toml per registry host
PATCH = f'[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "{CERTS_DIR}"'


def network_of_the_run() -> str:
    return os.environ["KIND_EXPERIMENTAL_DOCKER_NETWORK"]  # tests/conftest.py sets it


@pytest.fixture
def fakes(tmp_path: Path) -> Fakes:
    return Fakes(tmp_path / "state", tmp_path / "kubeconfig")


def kind_config(where: Path, patches: object) -> Path:
    path = where / f"kind-{secrets.token_hex(3)}.yaml"
    config = {"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4", "containerdConfigPatches": patches}
    path.write_text(yaml.safe_dump(config))
    return path


def test_the_network_is_kind_unless_the_environment_names_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KIND_EXPERIMENTAL_DOCKER_NETWORK")
    assert kind_network() == "kind"
    monkeypatch.setenv("KIND_EXPERIMENTAL_DOCKER_NETWORK", "elsewhere")
    assert kind_network() == "elsewhere"


def test_the_suite_names_the_network_after_its_run() -> None:
    if network_of_the_run() != KIND_NETWORK:
        pytest.skip("KIND_EXPERIMENTAL_DOCKER_NETWORK was set before the run: the tests use that one")
    assert network_of_the_run() == f"{TEST_PREFIX}-kind"


def test_the_toml_writer_round_trips() -> None:
    document = {
        "version": 2,
        "title": 'quotes " and \\ and ünïcode',
        "plugins": {
            "io.containerd.grpc.v1.cri": {
                "enabled": True,
                "ratio": 0.5,
                "registry": {"config_path": "/etc/containerd/certs.d", "mirrors": {}},
                "list": [1, "two", [3], {"inline": False}],
            },
            "plain": {"nested": {"deeper": {"x": -1}}},
        },
    }
    assert tomllib.loads(toml_text(document)) == document


def test_patches_merge_into_the_base_and_a_patch_for_another_version_is_skipped() -> None:
    config = patched_containerd_config(
        [
            PATCH,
            '[plugins."io.containerd.grpc.v1.cri"]\nsandbox_image = "example/pause:1"',
            'version = 3\n[plugins."io.containerd.grpc.v1.cri"]\nsandbox_image = "skipped"',
        ]
    )
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert (config["version"], cri["registry"], cri["sandbox_image"]) == (
        2,
        {"config_path": CERTS_DIR},
        "example/pause:1",
    )
    assert cri["containerd"]["snapshotter"] == "overlayfs"  # merged, not replaced
    assert "registry" not in patched_containerd_config([])["plugins"]["io.containerd.grpc.v1.cri"]


@pytest.mark.parametrize(
    ("patches", "message"),
    [
        (
            "not a list",
            "cannot unmarshal string into Go struct field Cluster.containerdConfigPatches of type []string",
        ),
        (
            [PATCH, 5],
            "cannot unmarshal number into Go struct field Cluster.containerdConfigPatches of type string",
        ),
    ],
)
def test_patches_that_are_not_a_list_of_strings_are_refused(
    fakes: Fakes, tmp_path: Path, patches: object, message: str
) -> None:
    result = fakes.kind(
        "create",
        "cluster",
        "--kubeconfig",
        str(fakes.kubeconfig),
        "--config",
        str(kind_config(tmp_path, patches)),
    )
    refused(
        result,
        f"ERROR: failed to create cluster: unable to decode config: error unmarshaling JSON: while decoding JSON: json: {message}",
    )
    assert "Creating cluster" not in result.stderr  # refused before anything is made
