"""A YAML file among the manifests that is not a Kubernetes object at all (a Skaffold
configuration, a Compose file, a kind cluster configuration, a kustomization named as a file,
YAML with neither apiVersion nor kind) is reported as what it is, with its file and the line of
the document — not as an object "the API server would reject". A Kubernetes object with a
broken field is still reported by the validation, as before.

The Skaffold and Compose files are written here in the shape their documentation gives
(skaffold.dev's ``skaffold.yaml`` reference, apiVersion ``skaffold/v4beta11``; the Compose
specification's ``services``).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from stagegate.config import load_config
from stagegate.errors import Code, StagegateError
from stagegate.manifests import not_kubernetes, render, validation_errors
from stagegate.stages.manifest_checks import check_manifest_references

from tests.conftest import Repo

SKAFFOLD = """\
apiVersion: skaffold/v4beta11
kind: Config
build:
  artifacts:
    - image: leeroy-web
      context: leeroy-web
manifests:
  rawYaml:
    - leeroy-web/kubernetes/*
"""
COMPOSE = """\
services:
  web:
    build: ./web
    ports: ["8080:8080"]
"""
KIND_CLUSTER = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n  - role: control-plane\n"
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: leeroy-web}]
"""


def write(root: Path, relpath: str, text: str) -> Path:
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def refused(path: Path, root: Path) -> StagegateError:
    with pytest.raises(StagegateError) as info:
        render(path, root)
    return info.value


def test_a_skaffold_configuration_in_the_manifests_dir_is_named_as_such(tmp_path: Path) -> None:
    write(tmp_path, "k8s/skaffold.yaml", SKAFFOLD)
    write(tmp_path, "k8s/web.yaml", DEPLOYMENT)

    error = refused(tmp_path / "k8s", tmp_path)

    assert error.code is Code.MANIFEST_INVALID
    assert error.message == (
        "k8s/skaffold.yaml:1: not a Kubernetes object (a Skaffold configuration) — point "
        "deploy.manifests at the Kubernetes manifests only"
    )
    assert error.subject == {
        "key": "tool.stagegate.deploy.manifests",
        "file": "k8s/skaffold.yaml",
        "line": 1,
        "reason": "a Skaffold configuration",
    }
    assert "move k8s/skaffold.yaml out of the manifests directory" in error.hint
    assert "API server" not in error.message + error.hint and error.others == []


@pytest.mark.parametrize(
    ("name", "text", "what"),
    [
        ("compose.yaml", COMPOSE, "a Compose file"),
        ("kind.yaml", KIND_CLUSTER, "a kind cluster configuration"),
        ("values.yaml", "replicaCount: 1\nimage: {repository: web}\n", "no apiVersion and no kind"),
    ],
)
def test_other_files_that_are_not_kubernetes_objects(tmp_path: Path, name: str, text: str, what: str) -> None:
    write(tmp_path, f"k8s/{name}", text)

    error = refused(tmp_path / "k8s" / name, tmp_path)

    assert error.code is Code.MANIFEST_INVALID
    assert error.message.startswith(f"k8s/{name}:1: not a Kubernetes object ({what})")
    assert error.subject["reason"] == what


def test_a_kustomization_named_as_a_file_is_pointed_at_its_directory(tmp_path: Path) -> None:
    path = write(tmp_path, "deploy/base/kustomization.yaml", "resources:\n  - web.yaml\n")

    error = refused(path, tmp_path)

    assert error.subject["reason"] == "a kustomization"
    assert "manifests at deploy/base, the kustomize directory" in error.hint


def test_the_line_is_that_of_the_document_and_every_such_document_is_reported(tmp_path: Path) -> None:
    write(tmp_path, "k8s/all.yaml", DEPLOYMENT + "---\n# the build\n" + SKAFFOLD)
    write(tmp_path, "k8s/compose.yaml", COMPOSE)

    error = refused(tmp_path / "k8s", tmp_path)

    line = len(DEPLOYMENT.splitlines()) + 3  # after the `---` and the comment
    assert (error.subject["file"], error.subject["line"]) == ("k8s/all.yaml", line)
    assert (tmp_path / "k8s/all.yaml").read_text().splitlines()[line - 1] == "apiVersion: skaffold/v4beta11"
    assert [(e.subject["file"], e.subject["line"]) for e in error.others] == [("k8s/compose.yaml", 1)]


@pytest.mark.parametrize(
    "doc",
    [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": "web"},
        {"apiVersion": "example.com/v1", "kind": "Config"},  # a custom resource of any group
        {"apiVersion": "v1", "metadata": {"name": "x"}},  # a Kubernetes object that lost its kind
        {"kind": "Service", "metadata": {"name": "x"}},  # …or its apiVersion
    ],
)
def test_kubernetes_objects_even_broken_ones_are_left_to_the_validation(doc: dict) -> None:
    assert not_kubernetes(doc) is None


def test_a_broken_kubernetes_object_is_still_an_object_the_api_server_would_reject(tmp_path: Path) -> None:
    write(tmp_path, "k8s/web.yaml", DEPLOYMENT.replace("metadata:\n  name: web\n", "metadata: web\n", 1))

    objects = render(tmp_path / "k8s", tmp_path)
    [error] = validation_errors(objects)

    assert error.code is Code.MANIFEST_INVALID
    assert error.message.startswith("k8s/web.yaml: Deployment/(no name) metadata: must be a mapping")
    assert "the API server would reject it" in error.hint


def test_preflight_reports_it_with_the_file_before_anything_is_built(repo: Repo) -> None:
    repo.write("leeroy-web/kubernetes/web.yaml", DEPLOYMENT)
    repo.write("skaffold.yaml", SKAFFOLD)
    repo.write("leeroy-web/Dockerfile", "FROM busybox\n")
    repo.config(
        '[[tool.stagegate.images]]\nname = "leeroy-web"\ncontext = "leeroy-web"\n'
        '[tool.stagegate.deploy]\nmanifests = ["skaffold.yaml", "leeroy-web/kubernetes"]\n'
    )
    [check] = check_manifest_references(load_config(repo.root, env={}))
    assert not check.ok and check.error is not None
    assert check.error.subject["file"] == "skaffold.yaml"
    assert "not a Kubernetes object (a Skaffold configuration)" in check.error.message

    repo.config(
        '[[tool.stagegate.images]]\nname = "leeroy-web"\ncontext = "leeroy-web"\n'
        '[tool.stagegate.deploy]\nmanifests = ["leeroy-web/kubernetes"]\n'
    )
    [check] = check_manifest_references(load_config(repo.root, env={}))
    assert check.ok, check.detail
