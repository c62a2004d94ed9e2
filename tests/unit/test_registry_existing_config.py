"""[tool.stagegate.registry] and [tool.stagegate.existing]: validated, resolved; the existing
target's allow-list and namespace-per-run rules checked without a cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
from stagegate.config import ExistingConfig, RegistryConfig, load_config
from stagegate.errors import Code, StagegateError
from stagegate.registry import insecure
from stagegate.targets.existing import check_context, namespace_for


def _load(root: Path, text: str):
    (root / "pyproject.toml").write_text("[tool.stagegate]\n" + text)
    return load_config(root, {})


def test_registry_and_existing_are_resolved(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        '[tool.stagegate.registry]\nurl = "127.0.0.1:5000/myproject/"\n'
        '[tool.stagegate.existing]\ncontexts = ["ci-a", "ci-b"]\ncontext = "ci-a"\nkubeconfig = "kube/config"\n',
    )
    assert config.registry == RegistryConfig("127.0.0.1:5000/myproject", False)
    assert config.registry.repository("example/api") == "127.0.0.1:5000/myproject/example/api"
    assert config.existing == ExistingConfig(("ci-a", "ci-b"), "ci-a", "sg-{run}", tmp_path / "kube/config")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[tool.stagegate.registry]\nurl = "https://r.example.com/p"\n', "tool.stagegate.registry.url"),
        ('[tool.stagegate.registry]\nurl = "r.example.com/p:tag"\n', "tool.stagegate.registry.url"),
        (
            '[tool.stagegate.registry]\nurl = "r.example.com"\ninsecure = "yes"\n',
            "tool.stagegate.registry.insecure",
        ),
        ("[tool.stagegate.existing]\ncontexts = []\n", "tool.stagegate.existing.contexts"),
        ('[tool.stagegate.existing]\ncontexts = ["a"]\ncontext = "b"\n', "tool.stagegate.existing.context"),
        (
            '[tool.stagegate.existing]\ncontexts = ["a"]\nnamespace = "shared"\n',
            "tool.stagegate.existing.namespace",
        ),
        (
            'target = "existing"\n[tool.stagegate.existing]\ncontexts = ["a"]\nbogus = 1\n',
            "tool.stagegate.existing.bogus",
        ),
    ],
)
def test_bad_settings_are_config_invalid(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(StagegateError) as caught:
        _load(tmp_path, text)
    assert caught.value.code == Code.CONFIG_INVALID
    assert caught.value.subject["key"] == key


def test_target_existing_is_accepted(tmp_path: Path) -> None:
    assert _load(tmp_path, 'target = "existing"\n').target == "existing"


def test_context_outside_the_allow_list_is_refused() -> None:
    existing = ExistingConfig(("ci-a",))
    assert check_context(existing, "ci-a") == "ci-a"
    with pytest.raises(StagegateError) as caught:
        check_context(existing, "prod")
    assert caught.value.code == Code.CONTEXT_NOT_ALLOWED
    assert caught.value.subject == {"context": "prod", "allowed": ["ci-a"]}
    with pytest.raises(StagegateError) as caught:
        check_context(existing, None)
    assert (caught.value.code, caught.value.subject["key"]) == (Code.CONFIG_INVALID, "--context")
    with pytest.raises(StagegateError) as caught:
        check_context(None, "ci-a")
    assert caught.value.subject["key"] == "tool.stagegate.existing"


def test_namespace_per_run() -> None:
    assert namespace_for("sg-{run}", "20261202T010203Z-a1b2c3") == "sg-a1b2c3"
    assert namespace_for("team-x-{run}-e2e", "20261202T010203Z-ffffff") == "team-x-ffffff-e2e"
    assert namespace_for("sg-{run}", "20261202T010203Z-a1b2c3") != namespace_for(
        "sg-{run}", "20261202T010203Z-a1b2c4"
    )
    assert len(namespace_for("x" * 70 + "{run}", "r-abc")) == 63
    # jobs continuing one downloaded run tell themselves apart by their artifacts dir's owner
    assert namespace_for("sg-{run}-{owner}", "r-abc", "0123456789abcdef") == "sg-abc-01234567"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("127.0.0.1:5000/p", True),
        ("localhost:5000", True),
        ("registry.example.com/p", False),
        ("10.0.0.2:5000", False),
    ],
)
def test_loopback_registries_are_looked_up_without_tls(url: str, expected: bool) -> None:
    assert insecure(RegistryConfig(url)) is expected
    assert insecure(RegistryConfig(url, insecure=True)) is True


def _target(tmp_path: Path):
    from stagegate.targets.existing import ExistingTarget

    return ExistingTarget(context="ci", namespace="sg-abc", artifacts=tmp_path, docker=None)  # type: ignore[arg-type]


def test_every_namespaced_object_goes_into_the_runs_namespace(tmp_path: Path) -> None:
    from stagegate.manifests import ManifestObject

    objects = [
        ManifestObject("a.yaml", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}}),
        ManifestObject(
            "a.yaml",
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": "demo"}},
        ),
        ManifestObject("a.yaml", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api"}}),
    ]
    scoped = _target(tmp_path).scoped(objects)
    assert [(o.kind, o.namespace) for o in scoped] == [("Deployment", "sg-abc"), ("Service", "sg-abc")]
    assert objects[1].namespace == "demo"  # copies: the rendered objects are left as they were


@pytest.mark.parametrize("kind", ["CustomResourceDefinition", "ClusterRole"])
def test_a_cluster_scoped_object_is_refused(tmp_path: Path, kind: str) -> None:
    from stagegate.manifests import ManifestObject

    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"names": {"kind": "Widget"}, "scope": "Cluster"},
    }
    objects = [ManifestObject("crd.yaml", crd)] if kind == "CustomResourceDefinition" else []
    objects.append(ManifestObject("x.yaml", {"apiVersion": "v1", "kind": kind, "metadata": {"name": "x"}}))
    with pytest.raises(StagegateError) as caught:
        _target(tmp_path).scoped(objects)
    assert caught.value.code == Code.MANIFEST_UNSUPPORTED
    assert caught.value.subject["kind"] == kind


@pytest.mark.parametrize(
    ("policy", "from_registry", "refused"),
    [
        ("Never", True, True),
        ("Always", True, False),
        (None, True, False),
        ("Always", False, True),
        ("Never", False, False),
    ],
)
def test_pull_policies_on_a_registry_target(
    tmp_path: Path, policy, from_registry: bool, refused: bool
) -> None:
    from stagegate.manifests import ManifestObject, check_references

    container = {
        "name": "api",
        "image": "example/api:sg-1",
        **({"imagePullPolicy": policy} if policy else {}),
    }
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [container]}}
    errors, _ = check_references(
        [ManifestObject("p.yaml", pod)],
        root=tmp_path,
        configured=["example/api"],
        external=[],
        from_registry=from_registry,
    )
    assert [e.code for e in errors] == ([Code.PULL_POLICY_INVALID] if refused else [])
