"""`stagegate init` reading what a repository already says: skaffold.yaml, compose files, the
manifests' own images. Each rule both ways, on the repositories of tests/fixtures/adoption."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest
from stagegate.adopt.kubernetes import is_api_object
from stagegate.config import load_config
from stagegate.init import describe, discover, init_repository

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "adoption"
E2E_TEST = "def test_it() -> None:\n    assert True\n"


def repo(tmp_path: Path, name: str, extra: dict[str, str] | None = None) -> Path:
    root = tmp_path / name
    shutil.copytree(FIXTURES / name, root)
    for relpath, text in (extra or {}).items():
        (root / relpath).parent.mkdir(parents=True, exist_ok=True)
        (root / relpath).write_text(text)
    return root


def written_table(root: Path) -> dict:
    return tomllib.loads((root / "pyproject.toml").read_text())["tool"]["stagegate"]


def not_mapped(findings) -> list[str]:
    return [f.detail.split(":", 1)[0] for f in findings if f.did == "not mapped"]


# -- skaffold.yaml ------------------------------------------------------------------------------


def test_skaffold_artifacts_become_images_with_requires_as_build_args(tmp_path: Path) -> None:
    proposal = discover(repo(tmp_path, "skaffold-services"))
    images = {i.name: (i.context, i.build_args, i.depends_on) for i in proposal.images}
    assert images == {
        "web": ("web", {"BASE": "base"}, ()),  # FROM $BASE: stagegate infers the dependency
        "worker": ("worker", {"MODE": "batch", "BASE": "base"}, ("base",)),  # $BASE only in a RUN
        "base": ("base", {}, ()),
    }
    # the Dockerfile discovery would have found the same folders under other rules: not used
    assert proposal.manifests == ("web/kubernetes/*", "worker/kubernetes/*")
    assert proposal.external_images == ("redis:7",)


def test_the_written_configuration_loads_and_infers_what_from_dollar_base_needs(tmp_path: Path) -> None:
    root = repo(tmp_path, "skaffold-services")
    init_repository(root)
    config = load_config(root, env={})
    assert config.images["web"].depends_on == ("base",)  # from FROM $BASE with BASE = "base"
    assert config.images["worker"].depends_on == ("base",)  # written, no FROM names it
    assert config.images["base"].depends_on == ()
    assert config.deploy.manifests == (
        (root / "web/kubernetes/deployment.yaml").resolve(),
        (root / "worker/kubernetes/deployment.yaml").resolve(),
    )
    assert load_config(root, env={}, profile="lean").deploy.manifests == (
        (root / "web/kubernetes/deployment.yaml").resolve(),
    )


def test_what_skaffold_says_without_an_equivalent_is_listed_and_the_mapped_keys_are_not(
    tmp_path: Path,
) -> None:
    listed = not_mapped(discover(repo(tmp_path, "skaffold-services")).findings)
    assert set(listed) >= {
        "test",
        "build.tagPolicy",
        "build.artifacts[1].docker.buildArgs.VERSION",  # a Go template
        "deploy.helm",
        "profiles[0] (cloud).build.googleCloudBuild",
    }
    for mapped in (
        "build.artifacts[0].requires",
        "manifests.rawYaml",
        "deploy.kubectl",
        "profiles[1] (lean).manifests",
    ):
        assert not any(key.startswith(mapped) for key in listed), mapped


def test_port_forward_is_written_with_e2e_tests_and_listed_as_not_mapped_without(tmp_path: Path) -> None:
    with_tests = repo(tmp_path, "skaffold-services", {"e2e/test_web.py": E2E_TEST})
    init_repository(with_tests)
    assert written_table(with_tests)["e2e"]["port_forward"] == [
        {"resource_type": "deployment", "resource_name": "web", "port": 8080, "local_port": 9000},
        {"resource_type": "service", "resource_name": "worker", "namespace": "jobs", "port": "metrics"},
    ]
    # what init writes is what the configuration reads: the entries load as they were written
    loaded = load_config(with_tests, env={}).e2e.port_forward
    assert [forward.entry() for forward in loaded] == written_table(with_tests)["e2e"]["port_forward"]
    assert [forward.describe() for forward in loaded] == [
        "deployment/web port 8080 on local port 9000",
        "service/worker port metrics",
    ]
    without = tmp_path / "without"
    shutil.copytree(FIXTURES / "skaffold-services", without)
    proposal = discover(without)
    assert proposal.e2e is None and proposal.port_forward == ()
    assert "e2e" not in proposal.table()
    assert [f.detail.split(":")[0] for f in proposal.findings if f.detail.startswith("portForward")] == [
        "portForward deployment/web port 8080 on local port 9000",
        "portForward service/worker port metrics",
    ]


def test_init_says_where_each_value_came_from(tmp_path: Path) -> None:
    lines = describe(init_repository(repo(tmp_path, "skaffold-services")))
    assert (
        'skaffold.yaml: read — image web: context web, build arg BASE = "base" '
        "(skaffold.yaml build.artifacts[0].requires)"
    ) in lines
    assert "skaffold.yaml: read — manifests web/kubernetes/*, worker/kubernetes/*" in lines


def test_kustomize_paths_dockerfile_relative_to_context_target_and_profiles(tmp_path: Path) -> None:
    root = repo(tmp_path, "skaffold-overlays")
    init_repository(root)
    table = written_table(root)
    assert table["images"] == [
        {"name": "shop-api", "context": "src", "dockerfile": "src/docker/Dockerfile", "target": "runtime"}
    ]
    assert table["deploy"] == {"manifests": "deploy/overlays/dev"}
    # prod changes the manifests; debug only the build and its activation: no stagegate profile
    assert table["profiles"] == {"prod": {"deploy": {"manifests": "deploy/overlays/prod"}}}
    config = load_config(root, env={}, profile="prod")
    assert config.deploy.manifests == ((root / "deploy/overlays/prod").resolve(),)
    assert config.images["shop-api"].target == "runtime"


def test_required_configs_by_path_multi_document_and_the_v1_v2_deploy_forms(tmp_path: Path) -> None:
    proposal = discover(repo(tmp_path, "skaffold-linked"))
    # the required config first (Skaffold builds it first), only the one `configs:` names
    assert [(i.name, i.context) for i in proposal.images] == [("migrate", "tools/migrate"), ("app", "app")]
    assert proposal.manifests == ("tools/migrate/job.yaml", "app/k8s/*.yaml", "docs/deploy")
    assert "build.artifacts[0].jib" in not_mapped(proposal.findings)  # docs is not configured


def test_a_skaffold_file_is_never_taken_for_manifests(tmp_path: Path) -> None:
    # getting-started's shape: skaffold.yaml beside the Dockerfile and the one manifest
    root = tmp_path / "one"
    root.mkdir()
    (root / "Dockerfile").write_text("FROM localhost/python-base:bookworm\n")
    (root / "pod.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: one}\nspec:\n  containers: [{name: one, image: one}]\n"
    )
    (root / "skaffold.yaml").write_text(
        "apiVersion: skaffold/v4beta14\nkind: Config\nbuild:\n  artifacts: [{image: one}]\n"
    )
    assert discover(root).manifests == (".",)  # no manifests named: the folder of the Pod
    (root / "skaffold.yaml").write_text(
        "apiVersion: skaffold/v4beta14\nkind: Config\nbuild:\n  artifacts: [{image: one}]\n"
        "manifests:\n  rawYaml: [pod.yaml]\n"
    )
    proposal = discover(root)
    assert proposal.manifests == ("pod.yaml",) and [i.name for i in proposal.images] == ["one"]


# -- compose ------------------------------------------------------------------------------------


def test_compose_services_that_build_become_images(tmp_path: Path) -> None:
    proposal = discover(repo(tmp_path, "compose-shop"))
    assert [i.entry() for i in proposal.images] == [
        {"name": "ghcr.io/acme/shop-api", "context": "api"},
        {
            "name": "worker",
            "context": ".",
            "dockerfile": "worker/Dockerfile.worker",
            "build_args": {"MODE": "batch"},
            "target": "runtime",
        },
        {"name": "front", "context": "front", "build_args": {"NODE_ENV": "production"}},
    ]
    listed = not_mapped(proposal.findings)
    assert "services.worker.build.cache_from" in listed
    assert "services.worker.build.args.TOKEN_FILE" in listed  # no value: from the environment
    assert "services.api" in listed  # ports, depends_on
    assert not any(key.startswith("services.db") for key in listed)  # built by nobody: nothing to map


# -- the manifests' own images ------------------------------------------------------------------


def test_each_dockerfile_takes_the_name_of_the_manifest_image_it_builds(tmp_path: Path) -> None:
    root = repo(tmp_path, "plain-team")
    proposal = discover(root)
    assert [(i.name, i.context) for i in proposal.images] == [
        ("registry.example/team/api", "services/api"),
        ("registry.example/team/migrate", "services/migrate"),
    ]
    # charts/ (Chart.yaml, templates), cluster/kind.yaml and settings.yaml hold no API objects
    assert proposal.manifests == ("k8s",)
    assert proposal.external_images == ("postgres:16",)
    init_repository(root)
    config = load_config(root, env={})
    assert list(config.images) == ["registry.example/team/api", "registry.example/team/migrate"]
    assert config.deploy.external_images == ("postgres:16",)


def test_an_ambiguous_pairing_keeps_the_folder_name_and_shows_the_candidates(tmp_path: Path) -> None:
    root = tmp_path / "shop"
    (root / "api").mkdir(parents=True)
    (root / "k8s").mkdir()
    (root / "api/Dockerfile").write_text("FROM x\n")
    pod = (
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {0}}}\nspec:\n  containers: [{{name: c, image: {1}}}]\n"
    )
    (root / "k8s/a.yaml").write_text(pod.format("a", "acme/api-server:1"))
    (root / "k8s/b.yaml").write_text(pod.format("b", "acme/api-gateway:1"))
    proposal = discover(root)
    assert [i.name for i in proposal.images] == ["api"]
    (finding,) = [f for f in proposal.findings if f.did == "not paired"]
    assert (
        "acme/api-server:1 (k8s/a.yaml)" in finding.detail
        and "acme/api-gateway:1 (k8s/b.yaml)" in finding.detail
    )
    # one fitting candidate fewer: paired
    (root / "k8s/b.yaml").write_text(pod.format("b", "acme/web:1"))
    assert [i.name for i in discover(root).images] == ["acme/api-server"]


def test_manifests_found_in_several_service_folders_are_a_list(tmp_path: Path) -> None:
    root = repo(tmp_path, "skaffold-services")
    (root / "skaffold.yaml").unlink()
    proposal = discover(root)
    assert proposal.manifests == ("web/kubernetes", "worker/kubernetes")
    assert [i.name for i in proposal.images] == ["base", "web", "worker"]


@pytest.mark.parametrize(
    ("doc", "is_object"),
    [
        ({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"}}, True),
        ({"apiVersion": "v1", "kind": "List", "items": []}, True),
        ({"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "p-"}}, True),
        ({"apiVersion": "skaffold/v4beta14", "kind": "Config", "metadata": {"name": "a"}}, False),
        (
            {
                "apiVersion": "kustomize.config.k8s.io/v1alpha1",
                "kind": "Component",
                "metadata": {"name": "c"},
            },
            False,
        ),
        ({"apiVersion": "kind.x-k8s.io/v1alpha4", "kind": "Cluster"}, False),
        ({"apiVersion": "v2", "name": "chart", "version": "0.1.0"}, False),  # Helm's Chart.yaml
        ({"services": {"api": {"build": "."}}}, False),  # a compose file
        ({"apiVersion": "v1", "kind": "AppSettings", "debug": True}, False),  # no metadata
    ],
)
def test_only_documents_shaped_like_api_objects_are_manifests(doc: dict, is_object: bool) -> None:
    assert is_api_object(doc) is is_object


def test_a_second_run_on_a_skaffold_repository_changes_nothing(tmp_path: Path) -> None:
    root = repo(tmp_path, "skaffold-services", {"e2e/test_web.py": E2E_TEST})
    init_repository(root)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    lines = describe(init_repository(root))
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
    assert lines[-1] == "stagegate is already configured here: nothing written"
