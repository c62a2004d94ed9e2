"""kind with a local registry, the parts that need no engine: the kind config with containerd's
patch, KEP-1755's ConfigMap, and the configuration keys (the registry container and the node
set-up run for real in tests/integration/test_kind_registry.py)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import yaml
from stagegate.config import load_config
from stagegate.errors import Code, StagegateError
from stagegate.targets.kind_registry import (
    CERTS_DIR,
    CONTAINERD_PATCH,
    hosting_configmap,
    kind_config_with_registry,
)

from tests.unit.test_config import make_repo


def config_path_of(patch: str) -> str:
    return tomllib.loads(patch)["plugins"]["io.containerd.grpc.v1.cri"]["registry"]["config_path"]


def test_the_patch_sets_containerds_config_path_to_the_certs_dir() -> None:
    assert config_path_of(CONTAINERD_PATCH) == CERTS_DIR == "/etc/containerd/certs.d"


def test_without_a_kind_config_the_minimal_cluster_gets_the_patch(tmp_path: Path) -> None:
    written = kind_config_with_registry(None, tmp_path / "kind-config.yaml")
    config = yaml.safe_load(written.read_text())
    assert config == {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "containerdConfigPatches": [CONTAINERD_PATCH],
    }


def test_the_users_kind_config_is_kept_and_the_patch_added_after_theirs(tmp_path: Path) -> None:
    theirs = tmp_path / "kind.yaml"
    mine = '[plugins."io.containerd.grpc.v1.cri".containerd]\n  snapshotter = "native"'
    theirs.write_text(
        yaml.safe_dump(
            {
                "kind": "Cluster",
                "apiVersion": "kind.x-k8s.io/v1alpha4",
                "name": "theirs",
                "nodes": [
                    {"role": "control-plane", "extraMounts": [{"hostPath": "/x", "containerPath": "/y"}]}
                ],
                "containerdConfigPatches": [mine],
            }
        )
    )
    before = theirs.read_text()
    config = yaml.safe_load(kind_config_with_registry(theirs, tmp_path / "out.yaml").read_text())
    assert config["name"] == "theirs"
    assert config["nodes"][0]["extraMounts"] == [{"hostPath": "/x", "containerPath": "/y"}]
    assert config["containerdConfigPatches"] == [mine, CONTAINERD_PATCH]
    assert theirs.read_text() == before  # the user's file is never written


def test_a_kind_config_that_has_the_patch_already_gets_it_once(tmp_path: Path) -> None:
    theirs = tmp_path / "kind.yaml"
    theirs.write_text(yaml.safe_dump({"kind": "Cluster", "containerdConfigPatches": [CONTAINERD_PATCH]}))
    config = yaml.safe_load(kind_config_with_registry(theirs, tmp_path / "out.yaml").read_text())
    assert config["containerdConfigPatches"] == [CONTAINERD_PATCH]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("- just\n- a list\n", "not a mapping"),
        ("kind: Cluster\ncontainerdConfigPatches: one string\n", "not a list"),
        ("kind: [unclosed\n", "cannot be read"),
    ],
)
def test_a_kind_config_stagegate_cannot_extend_is_a_config_error(tmp_path: Path, text: str, why: str) -> None:
    theirs = tmp_path / "kind.yaml"
    theirs.write_text(text)
    with pytest.raises(StagegateError) as info:
        kind_config_with_registry(theirs, tmp_path / "out.yaml")
    assert info.value.code == Code.CONFIG_INVALID
    assert why in info.value.message and str(theirs) in info.value.message
    assert not (tmp_path / "out.yaml").exists()


def test_the_hosting_configmap_says_where_the_registry_is() -> None:
    configmap = yaml.safe_load(hosting_configmap("localhost:40123"))
    assert (configmap["kind"], configmap["metadata"]) == (
        "ConfigMap",
        {"name": "local-registry-hosting", "namespace": "kube-public"},
    )
    hosting = yaml.safe_load(configmap["data"]["localRegistryHosting.v1"])
    assert hosting["host"] == "localhost:40123"
    assert hosting["help"].startswith("https://kind.sigs.k8s.io/")


def test_the_local_registry_is_off_by_default_and_registry_2_its_image(tmp_path: Path) -> None:
    config = load_config(make_repo(tmp_path, "[tool.stagegate]\n"), env={})
    assert (config.cluster.local_registry, config.cluster.local_registry_image) == (False, "registry:2")


def test_the_local_registry_and_its_image_are_read(tmp_path: Path) -> None:
    root = make_repo(
        tmp_path,
        '[tool.stagegate.cluster]\nlocal_registry = true\nlocal_registry_image = "mirror.example:5000/registry:2.8"\n',
    )
    config = load_config(root, env={})
    assert (config.cluster.local_registry, config.cluster.local_registry_image) == (
        True,
        "mirror.example:5000/registry:2.8",
    )


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ('local_registry = "yes"', "local_registry"),
        ('local_registry_image = "registry 2"', "local_registry_image"),
        ('local_registry_image = "--privileged"', "local_registry_image"),
    ],
)
def test_bad_local_registry_settings_are_refused(tmp_path: Path, line: str, key: str) -> None:
    root = make_repo(tmp_path, f"[tool.stagegate.cluster]\n{line}\n")
    with pytest.raises(StagegateError) as info:
        load_config(root, env={})
    assert info.value.code == Code.CONFIG_INVALID
    assert f"cluster.{key}" in info.value.message
