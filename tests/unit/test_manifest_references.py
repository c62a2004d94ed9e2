"""Configured images named outside `image:` (env values, command/args items, ConfigMap data):
rewritten when the value is a reference, left and reported otherwise; CRDs and Namespaces
first; the docker target skipping CRDs and their custom resources."""

from __future__ import annotations

from typing import Any

import pytest
from stagegate.manifests import ManifestObject, rewrite_images, split_prerequisites, value_references
from stagegate.targets.docker.translate import without_custom_resources

BUILT = {"example/driver": "example/driver:sg-1234", "api": "api:sg-5678", "busybox": "busybox:sg-9"}


def deployment(container: dict[str, Any]) -> ManifestObject:
    spec = {"containers": [{"name": "c", "image": "other/tool:1", **container}]}
    doc = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"spec": spec}},
    }
    return ManifestObject("k8s/d.yaml", doc)


def container_of(obj: ManifestObject) -> dict[str, Any]:
    return obj.doc["spec"]["template"]["spec"]["containers"][0]


REWRITTEN = [
    ("example/driver:ci", "example/driver:sg-1234"),
    ("example/driver", "example/driver:sg-1234"),
    ("docker.io/example/driver:v2", "example/driver:sg-1234"),
    ("example/driver@sha256:" + "a" * 64, "example/driver:sg-1234"),
    ("docker.io/library/busybox:1.36", "busybox:sg-9"),
    ("busybox:1.36", "busybox:sg-9"),
    ("api:dev", "api:sg-5678"),
    ("--image=example/driver:ci", "--image=example/driver:sg-1234"),
    ("DRIVER=example/driver:ci", "DRIVER=example/driver:sg-1234"),
]
UNTOUCHED = [
    "http://api:8080",  # a URL with the name of a configured image as its host
    "api",  # a bare word: a service name as often as an image
    "api:8080",  # host and port
    "registry/driver:ci",  # another repository
    "example/driver-v2:ci",  # a longer name
    "localhost:5000/example/driver:ci",  # another registry
    "run example/driver:ci now",  # inside a longer string
    "",
]


@pytest.mark.parametrize(("value", "expected"), REWRITTEN)
def test_an_env_value_naming_a_configured_image_is_rewritten(value: str, expected: str) -> None:
    obj = deployment(
        {
            "env": [
                {"name": "V2_DRIVER_IMAGE", "value": value},
                {"name": "API_URL", "value": "http://api:8080"},
            ]
        }
    )
    env = container_of(rewrite_images([obj], BUILT)[0])["env"]
    assert env == [
        {"name": "V2_DRIVER_IMAGE", "value": expected},
        {"name": "API_URL", "value": "http://api:8080"},
    ]
    assert container_of(obj)["env"][0]["value"] == value  # a copy: the rendered objects are kept


@pytest.mark.parametrize("value", UNTOUCHED)
def test_other_env_values_are_untouched(value: str) -> None:
    obj = deployment({"env": [{"name": "X", "value": value}]})
    assert rewrite_images([obj], BUILT)[0].doc == obj.doc


@pytest.mark.parametrize("key", ["command", "args"])
def test_command_and_args_items_both_ways(key: str) -> None:
    items = ["run", "--driver", "example/driver:ci", "--api=http://api:8080", "--image=api:dev"]
    obj = deployment({key: items})
    assert container_of(rewrite_images([obj], BUILT)[0])[key] == [
        "run",
        "--driver",
        "example/driver:sg-1234",
        "--api=http://api:8080",
        "--image=api:sg-5678",
    ]


def test_configmap_data_values_both_ways() -> None:
    doc = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cfg"},
        "data": {
            "driver_image": "example/driver:ci",
            "api_url": "http://api:8080",
            "other": "registry/driver:ci",
        },
    }
    out = rewrite_images([ManifestObject("k8s/cfg.yaml", doc)], BUILT)[0].doc["data"]
    assert out == {
        "driver_image": "example/driver:sg-1234",
        "api_url": "http://api:8080",
        "other": "registry/driver:ci",
    }


def test_secret_data_and_other_kinds_are_never_touched() -> None:
    doc = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "stringData": {"i": "example/driver:ci"},
    }
    assert rewrite_images([ManifestObject("s.yaml", doc)], BUILT)[0].doc == doc


def test_references_rewritten_and_left_are_reported() -> None:
    obj = deployment(
        {
            "env": [{"name": "A", "value": "example/driver:ci"}, {"name": "B", "value": "api:8080"}],
            "args": ["sh", "-c", "exec example/driver:ci --serve"],
        }
    )
    rewritten, left = value_references([obj], BUILT)
    assert rewritten == [
        {
            "resource": "Deployment/d",
            "field": "container 'c' env A",
            "image": "example/driver:ci",
            "known": True,
        }
    ]
    assert [(r.field, r.value, r.image) for r in left] == [
        ("container 'c' env B", "api:8080", "api"),
        ("container 'c' args[2]", "exec example/driver:ci --serve", "example/driver"),
    ]
    assert "does not split" in left[1].why


def obj(kind: str, name: str, api_version: str = "v1", spec: dict | None = None) -> ManifestObject:
    return ManifestObject(
        "k8s", {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}, "spec": spec or {}}
    )


CRD = obj(
    "CustomResourceDefinition",
    "widgets.example.com",
    "apiextensions.k8s.io/v1",
    {"group": "example.com", "names": {"kind": "Widget", "plural": "widgets"}, "scope": "Namespaced"},
)


def test_crds_and_namespaces_first_each_in_rendered_order() -> None:
    objects = [
        obj("Service", "s"),
        obj("Widget", "w", "example.com/v1"),
        CRD,
        obj("Namespace", "a"),
        obj("ConfigMap", "c"),
        obj("Namespace", "b"),
    ]
    first, rest = split_prerequisites(objects)
    assert [o.name for o in first] == ["widgets.example.com", "a", "b"]
    assert [o.name for o in rest] == ["s", "w", "c"]


def test_docker_target_skips_crds_and_their_custom_resources_with_a_note() -> None:
    other = obj("Gadget", "g", "other.io/v1")  # no CRD for it in the set: left for translate to refuse
    kept, skipped = without_custom_resources(
        [CRD, obj("Widget", "w", "example.com/v1"), obj("Service", "s"), other]
    )
    assert [o.name for o in kept] == ["s", "g"]
    assert skipped == [
        "CustomResourceDefinition/widgets.example.com (k8s): no API server on the docker target",
        "Widget/w (k8s): a custom resource, nothing runs it here",
    ]
