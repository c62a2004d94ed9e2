"""Values of [tool.stagegate] that config refuses as CONFIG_INVALID, with the key path and a
hint: timeouts, the cluster name, the platform and a manifests path that does not exist.
Each was once accepted unvalidated in the mutation trial of issue #15; each test gives one bad
value beside a good one, so that dropping the check fails it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from stagegate.config import load_config
from stagegate.errors import Code, StagegateError

IMAGE = '[[tool.stagegate.images]]\nname = "t/app"\ncontext = "app"\n'
DEPLOY = '[tool.stagegate.deploy]\nmanifests = "k8s"\n'


def repo(root: Path, stagegate: str) -> Path:
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text("[tool.stagegate]\n" + textwrap.dedent(stagegate))
    (root / "app").mkdir()
    (root / "app" / "Dockerfile").write_text("FROM scratch\n")
    (root / "k8s").mkdir()
    (root / "k8s" / "app.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    return root


def refused(root: Path) -> StagegateError:
    with pytest.raises(StagegateError) as info:
        load_config(root, env={})
    assert info.value.code == Code.CONFIG_INVALID
    assert info.value.hint
    return info.value


@pytest.mark.parametrize("value", ["0", "-5", '"soon"', "inf", "nan"])
def test_smoke_timeout_must_be_a_positive_number(tmp_path: Path, value: str) -> None:
    good = load_config(repo(tmp_path / "good", IMAGE + "smoke_timeout = 7.5\n"), {})
    assert good.images["t/app"].smoke_timeout == 7.5
    error = refused(repo(tmp_path / "bad", IMAGE + f"smoke_timeout = {value}\n"))
    assert error.subject["key"] == "tool.stagegate.images[0].smoke_timeout"


@pytest.mark.parametrize("value", ["0", "-1", '"5m"', "inf"])
def test_deploy_timeout_must_be_a_positive_number(tmp_path: Path, value: str) -> None:
    good = load_config(repo(tmp_path / "good", DEPLOY + "timeout = 42\n"), {})
    assert good.deploy.policy.timeout == 42
    error = refused(repo(tmp_path / "bad", DEPLOY + f"timeout = {value}\n"))
    assert error.subject["key"] == "tool.stagegate.deploy.timeout"


@pytest.mark.parametrize("name", ["Bad_Name", "dev cluster", "-dev", "dev-", ""])
def test_cluster_name_must_be_a_lowercase_dns_name(tmp_path: Path, name: str) -> None:
    good = load_config(repo(tmp_path / "good", '[tool.stagegate.cluster]\nname = "dev-1.local"\n'), {})
    assert good.cluster.name == "dev-1.local"
    error = refused(repo(tmp_path / "bad", f'[tool.stagegate.cluster]\nname = "{name}"\n'))
    assert error.subject["key"] == "tool.stagegate.cluster.name"


@pytest.mark.parametrize("platform", ["amd64", "linux", "Linux/AMD64", "linux/amd64/"])
def test_platform_must_be_os_slash_arch(tmp_path: Path, platform: str) -> None:
    good = load_config(repo(tmp_path / "good", 'platform = "linux/arm64/v8"\n'), {})
    assert good.platform == "linux/arm64/v8"
    error = refused(repo(tmp_path / "bad", f'platform = "{platform}"\n'))
    assert error.subject["key"] == "tool.stagegate.platform"
    assert "linux/amd64" in error.hint + error.message


def test_a_manifests_path_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    good = load_config(repo(tmp_path / "good", DEPLOY), {})
    assert good.deploy.manifests == (tmp_path / "good" / "k8s",)
    error = refused(repo(tmp_path / "bad", '[tool.stagegate.deploy]\nmanifests = "k8s-missing"\n'))
    assert error.subject["key"] == "tool.stagegate.deploy.manifests"
    assert "k8s-missing" in error.message


def test_a_missing_manifests_entry_of_a_list_names_its_index(tmp_path: Path) -> None:
    error = refused(repo(tmp_path / "bad", '[tool.stagegate.deploy]\nmanifests = ["k8s", "gone.yaml"]\n'))
    assert error.subject["key"] == "tool.stagegate.deploy.manifests[1]"
