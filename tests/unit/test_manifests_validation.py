"""stagegate.manifests.validate / validation_errors: the API server's rules checked before
anything is applied, each case both ways (the object as written passes; one change breaks it,
and the error names the file, the resource, the field and what is wrong).

The objects are hand-written in the shape of the Kubernetes API reference (v1.32); the rules are
those of k8s.io/apimachinery/pkg/util/validation (names, ports) and pkg/apis/{core,apps,batch}/
validation (selectors, enums, containers) that a manifest breaks most often.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from typing import Any

import pytest
from stagegate.errors import Code, StagegateError
from stagegate.manifests import ManifestObject, validate, validation_errors

SOURCE = "k8s/app.yaml"
DELETE = object()


def container(name: str = "web", **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": "example/web:1", **fields}


def pod_template(labels: dict[str, str] | None, *containers: dict[str, Any]) -> dict[str, Any]:
    template: dict[str, Any] = {"spec": {"containers": list(containers) or [container()]}}
    if labels is not None:
        template["metadata"] = {"labels": labels}
    return template


LABELS = {"app": "web", "tier": "front"}


def deployment(kind: str = "Deployment") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}, "annotations": {"a": "b"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": pod_template(dict(LABELS)),
        },
    }


def pod(**fields: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [container("app", **fields)]},
    }


def job() -> dict[str, Any]:
    template = pod_template({"job": "migrate"}, container("migrate"))
    template["spec"]["restartPolicy"] = "Never"
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "migrate"},
        "spec": {"template": template},
    }


def cron_job() -> dict[str, Any]:
    template = pod_template({"job": "report"}, container("report"))
    template["spec"]["restartPolicy"] = "OnFailure"
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "report"},
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": template}}},
    }


def replication_controller() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ReplicationController",
        "metadata": {"name": "legacy"},
        "spec": {"replicas": 1, "selector": {"app": "web"}, "template": pod_template({"app": "web"})},
    }


def service() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}, {"name": "admin", "port": 9000}]
        },
    }


def config_map() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"LEVEL": "info"}}


def secret() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "creds"},
        "data": {"password": "c2VjcmV0\ncGFzcw=="},  # base64 wrapped over lines, as `base64` writes it
        "stringData": {"token": "plain text"},
    }


def namespace() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}


BASES: dict[str, Callable[[], dict[str, Any]]] = {
    "Deployment": deployment,
    "StatefulSet": lambda: deployment("StatefulSet"),
    "DaemonSet": lambda: deployment("DaemonSet"),
    "ReplicaSet": lambda: deployment("ReplicaSet"),
    "ReplicationController": replication_controller,
    "Job": job,
    "CronJob": cron_job,
    "Pod": pod,
    "Service": service,
    "ConfigMap": config_map,
    "Secret": secret,
    "Namespace": namespace,
}


def edited(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``doc`` with the value at ``path`` (keys and list indexes joined by ``/``) set,
    or removed when ``value`` is DELETE."""
    doc = copy.deepcopy(doc)
    *parents, last = [int(part) if part.isdigit() else part for part in path.split("/")]
    holder: Any = doc
    for part in parents:
        holder = holder[part]
    if value is DELETE:
        del holder[last]
    else:
        holder[last] = value
    return doc


def errors_of(doc: dict[str, Any]) -> list[StagegateError]:
    return validation_errors([ManifestObject(SOURCE, doc)])


def the_error(doc: dict[str, Any]) -> StagegateError:
    errors = errors_of(doc)
    assert len(errors) == 1, [e.message for e in errors]
    return errors[0]


@pytest.mark.parametrize("kind", list(BASES))
def test_each_kind_as_written_passes(kind: str) -> None:
    assert errors_of(BASES[kind]()) == []


def test_an_error_names_file_resource_and_field_in_message_hint_and_subject() -> None:
    error = the_error(edited(deployment(), "spec/template/spec/containers/0/image", DELETE))
    field = "spec.template.spec.containers[0] (web).image"
    assert error.code is Code.MANIFEST_INVALID
    assert (
        error.message
        == f"{SOURCE}: Deployment/web {field}: is required and must be a string, got NoneType None"
    )
    assert error.hint == f"fix {field} of Deployment/web in {SOURCE}; the API server would reject it"
    assert error.subject == {
        "key": "tool.stagegate.deploy.manifests",
        "file": SOURCE,
        "resource": "Deployment/web",
        "field": field,
    }


def test_one_error_per_invalid_object_in_order_none_for_the_valid_ones() -> None:
    objects = [
        ManifestObject("a.yaml", edited(config_map(), "data/n", 1)),
        ManifestObject("b.yaml", config_map()),
        ManifestObject("c.yaml", edited(pod(), "spec/containers/0/workingDir", "srv")),
    ]
    errors = validation_errors(objects)
    assert [(e.subject["file"], e.subject["resource"], e.subject["field"]) for e in errors] == [
        ("a.yaml", "ConfigMap/cfg", "data.n"),
        ("c.yaml", "Pod/p", "spec.containers[0] (app).workingDir"),
    ]


def test_validate_raises_the_first_error_with_the_others_and_passes_valid_objects() -> None:
    good = [ManifestObject("ok.yaml", doc()) for doc in BASES.values()]
    assert validate(good) is None
    bad = [
        ManifestObject("a.yaml", edited(config_map(), "data/n", 1)),
        *good,
        ManifestObject("b.yaml", edited(namespace(), "metadata/name", "Shop")),
        ManifestObject("c.yaml", edited(service(), "spec/ports/0/port", 0)),
    ]
    with pytest.raises(StagegateError) as info:
        validate(bad)
    assert info.value.subject["file"] == "a.yaml"
    assert [e.subject["file"] for e in info.value.others] == ["b.yaml", "c.yaml"]


# -- the object's own fields ---------------------------------------------------------------------

RFC1123_SUBDOMAIN = (
    "is not a lowercase RFC 1123 name (lowercase letters, digits, '-' and '.'; alphanumeric at both ends; "
    "at most 253 characters)"
)
RFC1123_LABEL = (
    "is not a lowercase RFC 1123 name (lowercase letters, digits, '-'; alphanumeric at both ends; "
    "at most 63 characters)"
)
RFC1035_LABEL = (
    "is not a lowercase RFC 1035 label (lowercase letters, digits, '-'; alphanumeric at both ends; "
    "at most 63 characters)"
)

OBJECT_CASES = [
    (
        "no-api-version",
        deployment,
        "apiVersion",
        DELETE,
        "apiVersion",
        "must be a non-empty string, got NoneType None",
    ),
    (
        "empty-api-version",
        deployment,
        "apiVersion",
        "",
        "apiVersion",
        "must be a non-empty string, got str ''",
    ),
    ("kind-not-a-string", config_map, "kind", 3, "kind", "must be a non-empty string, got int 3"),
    ("empty-kind", config_map, "kind", "", "kind", "must be a non-empty string, got str ''"),
    ("no-metadata", config_map, "metadata", DELETE, "metadata", "must be a mapping, got NoneType None"),
    ("metadata-a-list", config_map, "metadata", ["cfg"], "metadata", "must be a mapping, got list ['cfg']"),
    (
        "no-name",
        config_map,
        "metadata/name",
        DELETE,
        "metadata.name",
        "is required and must be a string, got NoneType None",
    ),
    (
        "empty-name",
        config_map,
        "metadata/name",
        "",
        "metadata.name",
        "is required and must be a string, got str ''",
    ),
    (
        "name-a-number",
        config_map,
        "metadata/name",
        7,
        "metadata.name",
        "is required and must be a string, got int 7",
    ),
    ("uppercase-name", deployment, "metadata/name", "Web", "metadata.name", f"'Web' {RFC1123_SUBDOMAIN}"),
    (
        "name-ends-with-dash",
        deployment,
        "metadata/name",
        "web-",
        "metadata.name",
        f"'web-' {RFC1123_SUBDOMAIN}",
    ),
    (
        "name-with-underscore",
        config_map,
        "metadata/name",
        "my_cfg",
        "metadata.name",
        f"'my_cfg' {RFC1123_SUBDOMAIN}",
    ),
    (
        "service-name-with-digit-first",
        service,
        "metadata/name",
        "1web",
        "metadata.name",
        f"'1web' {RFC1035_LABEL}",
    ),
    (
        "service-name-with-dot",
        service,
        "metadata/name",
        "web.v1",
        "metadata.name",
        f"'web.v1' {RFC1035_LABEL}",
    ),
    (
        "namespace-name-with-dot",
        namespace,
        "metadata/name",
        "shop.eu",
        "metadata.name",
        f"'shop.eu' {RFC1123_LABEL}",
    ),
    (
        "bad-namespace",
        config_map,
        "metadata/namespace",
        "Shop",
        "metadata.namespace",
        f"'Shop' {RFC1123_LABEL}",
    ),
    (
        "namespace-with-dot",
        config_map,
        "metadata/namespace",
        "shop.eu",
        "metadata.namespace",
        f"'shop.eu' {RFC1123_LABEL}",
    ),
    (
        "namespace-a-number",
        config_map,
        "metadata/namespace",
        5,
        "metadata.namespace",
        "is required and must be a string, got int 5",
    ),
    (
        "label-not-a-string",
        deployment,
        "metadata/labels/app",
        1,
        "metadata.labels.app",
        "must be a string, got int 1",
    ),
    (
        "annotation-not-a-string",
        deployment,
        "metadata/annotations/a",
        True,
        "metadata.annotations.a",
        "must be a string, got bool True",
    ),
    (
        "labels-a-string",
        deployment,
        "metadata/labels",
        "app=web",
        "metadata.labels",
        "must be a mapping, got str 'app=web'",
    ),
    (
        "annotations-a-list",
        deployment,
        "metadata/annotations",
        [],
        "metadata.annotations",
        "must be a mapping, got list []",
    ),
    ("spec-a-string", config_map, "spec", "x", "spec", "must be a mapping, got str 'x'"),
    ("service-spec-a-list", service, "spec", [], "spec", "must be a mapping, got list []"),
]


@pytest.mark.parametrize(
    ("base", "path", "value", "field", "problem"),
    [case[1:] for case in OBJECT_CASES],
    ids=[case[0] for case in OBJECT_CASES],
)
def test_object_fields_the_api_server_refuses(base, path: str, value: Any, field: str, problem: str) -> None:
    error = the_error(edited(base(), path, value))
    assert (error.subject["field"], error.message.split(f" {field}: ", 1)[1]) == (field, problem)


@pytest.mark.parametrize(
    ("base", "path", "value"),
    [
        (deployment, "metadata/name", "web.v1-2"),  # a subdomain: dots allowed
        (config_map, "metadata/name", "1cfg"),  # digits first are fine outside a Service
        (config_map, "metadata/name", "a" * 253),
        (namespace, "metadata/name", "1shop"),
        (namespace, "metadata/name", "n" * 63),
        (service, "metadata/name", "w" * 63),
        (config_map, "metadata/namespace", None),  # unset
        (config_map, "metadata/namespace", "n" * 63),
        (config_map, "metadata/labels", None),
        (config_map, "spec", None),
        (service, "spec", None),  # no ports: nothing to check
        (service, "spec/ports", None),
        (config_map, "data", None),
        (secret, "data", None),
    ],
)
def test_object_fields_the_api_server_accepts(base, path: str, value: Any) -> None:
    assert errors_of(edited(base(), path, value)) == []


@pytest.mark.parametrize(
    ("base", "limit"),
    [(config_map, 253), (namespace, 63), (service, 63)],
)
def test_a_name_one_character_too_long_is_refused(base, limit: int) -> None:
    name = "a" * (limit + 1)
    error = the_error(edited(base(), "metadata/name", name))
    assert error.subject["field"] == "metadata.name"
    assert f"at most {limit} characters)" in error.message
    # A long value is shown cut at 60 characters.
    assert f"metadata.name: '{'a' * 60}'… is not" in error.message


def test_a_value_of_sixty_characters_is_shown_whole() -> None:
    error = the_error(edited(config_map(), "metadata/name", "A" * 60))
    assert f"metadata.name: '{'A' * 60}' is not" in error.message
    error = the_error(edited(config_map(), "metadata/name", "A" * 61))
    assert f"metadata.name: '{'A' * 60}'… is not" in error.message


def test_generate_name_stands_for_a_missing_name_but_not_for_a_bad_one() -> None:
    generated = edited(config_map(), "metadata", {"generateName": "cfg-"})
    assert errors_of(generated) == []
    both = edited(config_map(), "metadata", {"generateName": "cfg-", "name": "Cfg"})
    assert the_error(both).subject["field"] == "metadata.name"


@pytest.mark.parametrize(
    ("doc", "resource"),
    [
        (edited(config_map(), "data/n", 1), "ConfigMap/cfg"),
        (edited(edited(config_map(), "data/n", 1), "kind", DELETE), "(no kind)/cfg"),
        (edited(config_map(), "metadata", DELETE), "ConfigMap/(no name)"),
        (edited(config_map(), "metadata", "cfg"), "ConfigMap/(no name)"),
        (edited(config_map(), "metadata/name", 42), "ConfigMap/(no name)"),
        (edited(config_map(), "metadata/name", ""), "ConfigMap/(no name)"),
        (edited(edited(config_map(), "data/n", 1), "metadata/name", "c" * 63), "ConfigMap/" + "c" * 63),
        (edited(edited(config_map(), "data/n", 1), "metadata/name", "c" * 64), "ConfigMap/" + "c" * 60 + "…"),
    ],
)
def test_the_resource_is_named_by_kind_and_name_or_says_what_is_missing(doc: dict, resource: str) -> None:
    error = the_error(doc)
    assert error.subject["resource"] == resource
    assert error.message.startswith(f"{SOURCE}: {resource} ")


# -- ConfigMap, Secret, Service -------------------------------------------------------------------

DATA_CASES = [
    ("configmap-data-a-number", config_map, "data/n", 1, "data.n", "must be a string, got int 1"),
    ("configmap-data-a-list", config_map, "data", ["a"], "data", "must be a mapping, got list ['a']"),
    ("secret-data-a-number", secret, "data/pin", 1234, "data.pin", "must be a base64 string, got int"),
    (
        "secret-data-not-base64",
        secret,
        "data/pw",
        "hunter2 is secret!",
        "data.pw",
        "is not valid base64 (use stringData for plain text)",
    ),
    (
        # the API server decodes data with the standard alphabet: URL-safe base64 is refused
        "secret-data-url-safe-base64",
        secret,
        "data/key",
        base64.urlsafe_b64encode(b"\xfb\xff").decode(),
        "data.key",
        "is not valid base64 (use stringData for plain text)",
    ),
    ("secret-data-a-list", secret, "data", ["a"], "data", "must be a mapping, got list ['a']"),
    (
        "secret-string-data-a-number",
        secret,
        "stringData/port",
        8080,
        "stringData.port",
        "must be a string, got int",
    ),
    ("secret-string-data-a-list", secret, "stringData", "x", "stringData", "must be a mapping, got str 'x'"),
    ("port-not-a-mapping", service, "spec/ports/0", 80, "spec.ports[0]", "must be a mapping, got int 80"),
    ("ports-not-a-list", service, "spec/ports", "80", "spec.ports", "must be a list, got str '80'"),
    (
        "port-a-name",
        service,
        "spec/ports/0/port",
        "http",
        "spec.ports[0].port",
        "must be a port number (1-65535), got str 'http': a name is not allowed here",
    ),
    (
        "second-port-missing",
        service,
        "spec/ports/1/port",
        DELETE,
        "spec.ports[1].port",
        "must be an integer, got NoneType None",
    ),
    (
        "port-zero",
        service,
        "spec/ports/0/port",
        0,
        "spec.ports[0].port",
        "must be between 1 and 65535, got 0",
    ),
    (
        "port-too-high",
        service,
        "spec/ports/0/port",
        65536,
        "spec.ports[0].port",
        "must be between 1 and 65535, got 65536",
    ),
    (
        "port-a-boolean",
        service,
        "spec/ports/0/port",
        True,
        "spec.ports[0].port",
        "must be an integer, got bool True",
    ),
    (
        "port-a-float",
        service,
        "spec/ports/0/port",
        80.0,
        "spec.ports[0].port",
        "must be an integer, got float 80.0",
    ),
    (
        "target-port-uppercase",
        service,
        "spec/ports/0/targetPort",
        "HTTP",
        "spec.ports[0].targetPort",
        "'HTTP' is neither a port number nor a valid port name",
    ),
    (
        "target-port-digits-in-a-string",
        service,
        "spec/ports/0/targetPort",
        "8080",
        "spec.ports[0].targetPort",
        "'8080' is neither a port number nor a valid port name",
    ),
    (
        "target-port-name-too-long",
        service,
        "spec/ports/0/targetPort",
        "a" * 16,
        "spec.ports[0].targetPort",
        f"'{'a' * 16}' is neither a port number nor a valid port name",
    ),
    (
        "target-port-ends-with-dash",
        service,
        "spec/ports/0/targetPort",
        "http-",
        "spec.ports[0].targetPort",
        "'http-' is neither a port number nor a valid port name",
    ),
    (
        "target-port-zero",
        service,
        "spec/ports/0/targetPort",
        0,
        "spec.ports[0].targetPort",
        "must be between 1 and 65535, got 0",
    ),
]


@pytest.mark.parametrize(
    ("base", "path", "value", "field", "problem"),
    [case[1:] for case in DATA_CASES],
    ids=[case[0] for case in DATA_CASES],
)
def test_data_and_ports_the_api_server_refuses(base, path: str, value: Any, field: str, problem: str) -> None:
    error = the_error(edited(base(), path, value))
    assert (error.subject["field"], error.message.split(f" {field}: ", 1)[1]) == (field, problem)


@pytest.mark.parametrize(
    ("base", "path", "value"),
    [
        (config_map, "data/text", "not base64 at all!"),  # the base64 rule is a Secret's
        (secret, "stringData/pw", "not base64 at all!"),
        (secret, "data/pw", ""),
        (service, "spec/ports/0/port", 1),
        (service, "spec/ports/0/port", 65535),
        (service, "spec/ports/0/targetPort", 65535),
        (service, "spec/ports/0/targetPort", None),
        (service, "spec/ports/0/targetPort", "a" * 15),
        (service, "spec/ports/0/targetPort", "h2c-8080"),
    ],
)
def test_data_and_ports_the_api_server_accepts(base, path: str, value: Any) -> None:
    assert errors_of(edited(base(), path, value)) == []


def test_a_secret_value_is_never_shown_in_its_error() -> None:
    for value in ("hunter2 is secret!", 123456789):
        error = the_error(edited(secret(), "data/pw", value))
        assert str(value) not in error.message + error.hint
        error = the_error(edited(secret(), "stringData/pw", [str(value)]))
        assert str(value) not in error.message + error.hint


def test_the_data_rules_apply_to_their_own_kind_only() -> None:
    """The ConfigMap and Service rules belong to those kinds: another kind's ``data`` or
    ``spec.ports`` is not checked by them."""
    other = edited(config_map(), "kind", "Endpoints")
    assert errors_of(edited(other, "data/n", 1)) == []
    assert errors_of(edited(edited(service(), "kind", "Endpoints"), "spec/ports/0/port", "http")) == []


# -- workloads: spec, selector, template -----------------------------------------------------------

WORKLOAD_CASES = [
    ("no-spec", deployment, "spec", DELETE, "spec", "must be a mapping, got NoneType None"),
    ("negative-replicas", deployment, "spec/replicas", -1, "spec.replicas", "must be >= 0, got -1"),
    (
        "replicas-a-string",
        deployment,
        "spec/replicas",
        "2",
        "spec.replicas",
        "must be an integer, got str '2'",
    ),
    (
        "replicas-a-boolean",
        replication_controller,
        "spec/replicas",
        True,
        "spec.replicas",
        "must be an integer, got bool True",
    ),
    (
        "no-template",
        deployment,
        "spec/template",
        DELETE,
        "spec.template",
        "must be a mapping, got NoneType None",
    ),
    (
        "template-metadata-a-string",
        deployment,
        "spec/template/metadata",
        "x",
        "spec.template.metadata",
        "must be a mapping, got str 'x'",
    ),
    (
        "template-labels-a-list",
        deployment,
        "spec/template/metadata/labels",
        ["app"],
        "spec.template.metadata.labels",
        "must be a mapping, got list ['app']",
    ),
    (
        "no-template-spec",
        deployment,
        "spec/template/spec",
        DELETE,
        "spec.template.spec",
        "must be a mapping, got NoneType None",
    ),
    ("no-selector", deployment, "spec/selector", DELETE, "spec.selector", "is required for a Deployment"),
    (
        "statefulset-no-selector",
        lambda: deployment("StatefulSet"),
        "spec/selector",
        DELETE,
        "spec.selector",
        "is required for a StatefulSet",
    ),
    (
        "daemonset-no-selector",
        lambda: deployment("DaemonSet"),
        "spec/selector",
        DELETE,
        "spec.selector",
        "is required for a DaemonSet",
    ),
    (
        "replicaset-no-selector",
        lambda: deployment("ReplicaSet"),
        "spec/selector",
        DELETE,
        "spec.selector",
        "is required for a ReplicaSet",
    ),
    (
        "null-selector",
        deployment,
        "spec/selector",
        None,
        "spec.selector",
        "must be a mapping, got NoneType None",
    ),
    (
        "empty-selector",
        deployment,
        "spec/selector",
        {},
        "spec.selector",
        "is empty: it must select the pod template's labels",
    ),
    (
        "empty-match-labels",
        deployment,
        "spec/selector",
        {"matchLabels": {}},
        "spec.selector",
        "is empty: it must select the pod template's labels",
    ),
    (
        "match-labels-a-list",
        deployment,
        "spec/selector/matchLabels",
        ["app"],
        "spec.selector.matchLabels",
        "must be a mapping, got list ['app']",
    ),
    (
        "selector-of-another-app",
        deployment,
        "spec/selector/matchLabels/app",
        "api",
        "spec.selector",
        "app=api does not match the template's labels (app=web, tier=front)",
    ),
    (
        "selector-key-not-in-template",
        deployment,
        "spec/selector/matchLabels",
        {"app": "web", "zone": "a"},
        "spec.selector",
        "zone=a does not match the template's labels (app=web, tier=front)",
    ),
    (
        "template-without-labels",
        deployment,
        "spec/template/metadata",
        DELETE,
        "spec.selector",
        "app=web does not match the template's labels (none)",
    ),
    (
        "job-selector-not-matching",
        job,
        "spec/selector",
        {"matchLabels": {"job": "other"}},
        "spec.selector",
        "job=other does not match the template's labels (job=migrate)",
    ),
    (
        "rc-selector-not-matching",
        replication_controller,
        "spec/selector",
        {"app": "api"},
        "spec.selector",
        "app=api does not match the template's labels (app=web)",
    ),
    # a ReplicationController's selector is a plain label map: matchLabels is a label key there
    (
        "rc-selector-with-match-labels",
        replication_controller,
        "spec/selector",
        {"matchLabels": {"app": "web"}},
        "spec.selector",
        "matchLabels={'app': 'web'} does not match the template's labels (app=web)",
    ),
    (
        "no-job-template",
        cron_job,
        "spec/jobTemplate",
        DELETE,
        "spec.jobTemplate",
        "must be a mapping, got NoneType None",
    ),
    (
        "no-job-template-spec",
        cron_job,
        "spec/jobTemplate/spec",
        DELETE,
        "spec.jobTemplate.spec",
        "must be a mapping, got NoneType None",
    ),
    (
        "no-cronjob-template",
        cron_job,
        "spec/jobTemplate/spec/template",
        DELETE,
        "spec.jobTemplate.spec.template",
        "must be a mapping, got NoneType None",
    ),
    (
        "cronjob-template-metadata-a-list",
        cron_job,
        "spec/jobTemplate/spec/template/metadata",
        [],
        "spec.jobTemplate.spec.template.metadata",
        "must be a mapping, got list []",
    ),
    (
        "no-cronjob-pod-spec",
        cron_job,
        "spec/jobTemplate/spec/template/spec",
        DELETE,
        "spec.jobTemplate.spec.template.spec",
        "must be a mapping, got NoneType None",
    ),
    (
        "cronjob-container-without-image",
        cron_job,
        "spec/jobTemplate/spec/template/spec/containers/0/image",
        DELETE,
        "spec.jobTemplate.spec.template.spec.containers[0] (report).image",
        "is required and must be a string, got NoneType None",
    ),
    (
        "job-container-without-image",
        job,
        "spec/template/spec/containers/0/image",
        "",
        "spec.template.spec.containers[0] (migrate).image",
        "is required and must be a string, got str ''",
    ),
    ("pod-without-spec", pod, "spec", DELETE, "spec", "must be a mapping, got NoneType None"),
    (
        "pod-without-containers",
        pod,
        "spec/containers",
        DELETE,
        "spec.containers",
        "must list at least one container",
    ),
    (
        "pod-with-no-containers",
        pod,
        "spec/containers",
        [],
        "spec.containers",
        "must list at least one container",
    ),
    (
        "containers-a-string",
        pod,
        "spec/containers",
        "app",
        "spec.containers",
        "must be a list, got str 'app'",
    ),
    (
        "restart-policy-lowercase",
        pod,
        "spec/restartPolicy",
        "always",
        "spec.restartPolicy",
        "must be one of Always, OnFailure, Never, got str 'always'",
    ),
    (
        "deployment-restart-policy",
        deployment,
        "spec/template/spec/restartPolicy",
        "Sometimes",
        "spec.template.spec.restartPolicy",
        "must be one of Always, OnFailure, Never, got str 'Sometimes'",
    ),
    (
        "init-container-without-image",
        pod,
        "spec/initContainers",
        [container("init", image=" ")],
        "spec.initContainers[0] (init).image",
        "is required and must be a string, got str ' '",
    ),
    (
        "ephemeral-container-a-string",
        pod,
        "spec/ephemeralContainers",
        ["debug"],
        "spec.ephemeralContainers[0]",
        "must be a mapping, got str 'debug'",
    ),
    (
        "init-containers-a-mapping",
        pod,
        "spec/initContainers",
        {"name": "init"},
        "spec.initContainers",
        "must be a list, got dict {'name': 'init'}",
    ),
]


@pytest.mark.parametrize(
    ("base", "path", "value", "field", "problem"),
    [case[1:] for case in WORKLOAD_CASES],
    ids=[case[0] for case in WORKLOAD_CASES],
)
def test_workloads_the_api_server_refuses(base, path: str, value: Any, field: str, problem: str) -> None:
    error = the_error(edited(base(), path, value))
    assert (error.subject["field"], error.message.split(f" {field}: ", 1)[1]) == (field, problem)


@pytest.mark.parametrize(
    ("base", "path", "value"),
    [
        (deployment, "spec/replicas", 0),
        (deployment, "spec/replicas", None),
        (job, "spec/selector", {"matchLabels": {"job": "migrate"}}),  # a Job may give one
        (replication_controller, "spec/selector", DELETE),  # defaulted to the template's labels
        (deployment, "spec/selector/matchLabels", dict(LABELS)),
        (pod, "spec/restartPolicy", "Always"),
        (pod, "spec/restartPolicy", "OnFailure"),
        (pod, "spec/restartPolicy", "Never"),
        (pod, "spec/restartPolicy", None),
        (pod, "spec/initContainers", [container("init")]),
        (pod, "spec/ephemeralContainers", [container("debug")]),
        (pod, "spec/initContainers", None),
    ],
)
def test_workloads_the_api_server_accepts(base, path: str, value: Any) -> None:
    assert errors_of(edited(base(), path, value)) == []


def test_a_job_without_its_own_selector_is_not_asked_for_one() -> None:
    assert "selector" not in job()["spec"]
    assert errors_of(job()) == []
    assert "selector" not in cron_job()["spec"]["jobTemplate"]["spec"]
    assert errors_of(cron_job()) == []


# -- selectors: matchExpressions -------------------------------------------------------------------


def expressions(*items: Any) -> dict[str, Any]:
    return edited(deployment(), "spec/selector", {"matchExpressions": list(items)})


@pytest.mark.parametrize(
    "expression",
    [
        {"key": "tier", "operator": "In", "values": ["front", "back"]},
        {"key": "tier", "operator": "NotIn", "values": ["back"]},
        {"key": "zone", "operator": "NotIn", "values": ["a"]},  # not there: not in any value
        {"key": "app", "operator": "Exists"},
        {"key": "zone", "operator": "DoesNotExist"},
    ],
)
def test_an_expression_that_selects_the_template_passes(expression: dict) -> None:
    assert errors_of(expressions(expression)) == []


@pytest.mark.parametrize(
    ("expression", "said"),
    [
        ({"key": "tier", "operator": "In", "values": ["back"]}, "tier In ['back']"),
        ({"key": "zone", "operator": "In", "values": ["a"]}, "zone In ['a']"),  # not there
        ({"key": "tier", "operator": "In"}, "tier In []"),  # no values: nothing is in them
        ({"key": "tier", "operator": "NotIn", "values": ["front"]}, "tier NotIn ['front']"),
        ({"key": "zone", "operator": "Exists"}, "zone Exists []"),
        ({"key": "app", "operator": "DoesNotExist"}, "app DoesNotExist []"),
    ],
)
def test_an_expression_that_does_not_select_the_template_is_refused(expression: dict, said: str) -> None:
    error = the_error(expressions({"key": "app", "operator": "Exists"}, expression))
    assert error.subject["field"] == "spec.selector.matchExpressions[1]"
    assert error.message.endswith(f": {said} does not match the template's labels (app=web, tier=front)")


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("tier", "must be a mapping with key, operator and values, got str 'tier'"),
        (
            {"operator": "Exists"},
            "must be a mapping with key, operator and values, got dict {'operator': 'Exists'}",
        ),
        (
            {"key": 1, "operator": "Exists"},
            "must be a mapping with key, operator and values, got dict {'key': 1, 'operator': 'Exists'}",
        ),
        (
            {"key": "tier", "operator": "in", "values": ["front"]},
            "operator must be In, NotIn, Exists or DoesNotExist, got str 'in'",
        ),
        (
            {"key": "tier", "values": ["front"]},
            "operator must be In, NotIn, Exists or DoesNotExist, got NoneType None",
        ),
        (
            {"key": "tier", "operator": "In", "values": "front"},
            "operator must be In, NotIn, Exists or DoesNotExist, got str 'In'",
        ),
    ],
)
def test_a_malformed_expression_is_refused(expression: Any, problem: str) -> None:
    error = the_error(expressions(expression))
    assert error.subject["field"] == "spec.selector.matchExpressions[0]"
    assert error.message.endswith(f"spec.selector.matchExpressions[0]: {problem}")


def test_match_expressions_that_are_not_a_list_are_refused() -> None:
    error = the_error(expressions())
    assert error.subject["field"] == "spec.selector"  # an empty list selects nothing
    doc = edited(deployment(), "spec/selector", {"matchExpressions": {"key": "app"}})
    assert the_error(doc).subject["field"] == "spec.selector.matchExpressions"


def test_match_labels_and_expressions_must_both_select_the_template() -> None:
    selector = {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "Exists"}]}
    assert errors_of(edited(deployment(), "spec/selector", selector)) == []
    selector["matchExpressions"][0]["operator"] = "DoesNotExist"
    assert the_error(edited(deployment(), "spec/selector", selector)).subject["field"] == (
        "spec.selector.matchExpressions[0]"
    )


# -- containers ------------------------------------------------------------------------------------

C = "spec.containers[0] (app)"

CONTAINER_CASES = [
    ("not-a-mapping", "spec/containers/0", "app", "spec.containers[0]", "must be a mapping, got str 'app'"),
    (
        "no-name",
        "spec/containers/0/name",
        DELETE,
        "spec.containers[0].name",
        "is required and must be a string, got NoneType None",
    ),
    (
        "name-with-dot",
        "spec/containers/0/name",
        "app.v1",
        "spec.containers[0].name",
        f"'app.v1' {RFC1123_LABEL}",
    ),
    (
        "name-too-long",
        "spec/containers/0/name",
        "a" * 64,
        "spec.containers[0].name",
        f"'{'a' * 60}'… {RFC1123_LABEL}",
    ),
    (
        "no-image",
        "spec/containers/0/image",
        DELETE,
        f"{C}.image",
        "is required and must be a string, got NoneType None",
    ),
    (
        "blank-image",
        "spec/containers/0/image",
        "  ",
        f"{C}.image",
        "is required and must be a string, got str '  '",
    ),
    (
        "image-a-number",
        "spec/containers/0/image",
        5,
        f"{C}.image",
        "is required and must be a string, got int 5",
    ),
    (
        "pull-policy-lowercase",
        "spec/containers/0/imagePullPolicy",
        "ifNotPresent",
        f"{C}.imagePullPolicy",
        "must be one of Always, IfNotPresent, Never (case matters), got str 'ifNotPresent'",
    ),
    (
        "command-a-string",
        "spec/containers/0/command",
        "python3 -m web",
        f"{C}.command",
        "must be a list of strings, got str 'python3 -m web'",
    ),
    (
        "args-with-a-number",
        "spec/containers/0/args",
        ["--port", 80],
        f"{C}.args",
        "must be a list of strings, got list ['--port', 80]",
    ),
    (
        "relative-working-dir",
        "spec/containers/0/workingDir",
        "srv",
        f"{C}.workingDir",
        "must be an absolute path, got str 'srv'",
    ),
    (
        "working-dir-a-number",
        "spec/containers/0/workingDir",
        5,
        f"{C}.workingDir",
        "must be an absolute path, got int 5",
    ),
    (
        "ports-a-mapping",
        "spec/containers/0/ports",
        {"containerPort": 80},
        f"{C}.ports",
        "must be a list, got dict {'containerPort': 80}",
    ),
    (
        "port-a-string",
        "spec/containers/0/ports",
        ["8080"],
        f"{C}.ports[0]",
        "must be a mapping, got str '8080'",
    ),
    (
        "container-port-a-name",
        "spec/containers/0/ports",
        [{"containerPort": "http"}],
        f"{C}.ports[0].containerPort",
        "must be a port number (1-65535), got str 'http': a name is not allowed here",
    ),
    (
        "no-container-port",
        "spec/containers/0/ports",
        [{"containerPort": 80}, {"name": "x"}],
        f"{C}.ports[1].containerPort",
        "must be an integer, got NoneType None",
    ),
    (
        "container-port-too-high",
        "spec/containers/0/ports",
        [{"containerPort": 70000}],
        f"{C}.ports[0].containerPort",
        "must be between 1 and 65535, got 70000",
    ),
    (
        "host-port-zero",
        "spec/containers/0/ports",
        [{"containerPort": 80, "hostPort": 0}],
        f"{C}.ports[0].hostPort",
        "must be between 1 and 65535, got 0",
    ),
    (
        "host-port-a-name",
        "spec/containers/0/ports",
        [{"containerPort": 80, "hostPort": "http"}],
        f"{C}.ports[0].hostPort",
        "must be a port number (1-65535), got str 'http': a name is not allowed here",
    ),
    (
        "mounts-a-mapping",
        "spec/containers/0/volumeMounts",
        {"mountPath": "/d"},
        f"{C}.volumeMounts",
        "must be a list, got dict {'mountPath': '/d'}",
    ),
    (
        "env-a-mapping",
        "spec/containers/0/env",
        {"A": "1"},
        f"{C}.env",
        "must be a list, got dict {'A': '1'}",
    ),
    (
        "mount-a-string",
        "spec/containers/0/volumeMounts",
        ["data"],
        f"{C}.volumeMounts[0]",
        "must be a mapping, got str 'data'",
    ),
    (
        "relative-mount-path",
        "spec/containers/0/volumeMounts",
        [{"name": "d", "mountPath": "/d"}, {"name": "e", "mountPath": "data"}],
        f"{C}.volumeMounts[1].mountPath",
        "must be an absolute path, got str 'data'",
    ),
    (
        "no-mount-path",
        "spec/containers/0/volumeMounts",
        [{"name": "d"}],
        f"{C}.volumeMounts[0].mountPath",
        "must be an absolute path, got NoneType None",
    ),
    (
        "env-a-string",
        "spec/containers/0/env",
        ["A=1"],
        f"{C}.env[0]",
        "must be a mapping with a name, got str 'A=1'",
    ),
    (
        "env-without-name",
        "spec/containers/0/env",
        [{"value": "1"}],
        f"{C}.env[0]",
        "must be a mapping with a name, got dict {'value': '1'}",
    ),
    (
        "env-with-empty-name",
        "spec/containers/0/env",
        [{"name": "", "value": "1"}],
        f"{C}.env[0]",
        "must be a mapping with a name, got dict {'name': '', 'value': '1'}",
    ),
    (
        "env-name-a-number",
        "spec/containers/0/env",
        [{"name": 1}],
        f"{C}.env[0]",
        "must be a mapping with a name, got dict {'name': 1}",
    ),
    (
        "env-value-a-number",
        "spec/containers/0/env",
        [{"name": "A", "value": "1"}, {"name": "PORT", "value": 8080}],
        f"{C}.env[1].value",
        "must be a string, got int 8080",
    ),
    (
        "probe-a-string",
        "spec/containers/0/readinessProbe",
        "http",
        f"{C}.readinessProbe",
        "must be a mapping, got str 'http'",
    ),
    (
        "http-get-a-string",
        "spec/containers/0/livenessProbe",
        {"httpGet": "/"},
        f"{C}.livenessProbe.httpGet",
        "must be a mapping, got str '/'",
    ),
    (
        "tcp-socket-bad-name",
        "spec/containers/0/startupProbe",
        {"tcpSocket": {"port": "HTTP"}},
        f"{C}.startupProbe.tcpSocket.port",
        "'HTTP' is neither a port number nor a valid port name",
    ),
    (
        "http-get-without-port",
        "spec/containers/0/readinessProbe",
        {"httpGet": {"path": "/"}},
        f"{C}.readinessProbe.httpGet.port",
        "must be an integer, got NoneType None",
    ),
    (
        "grpc-port-a-name",
        "spec/containers/0/livenessProbe",
        {"grpc": {"port": "grpc"}},
        f"{C}.livenessProbe.grpc.port",
        "must be a port number (1-65535), got str 'grpc': a name is not allowed here",
    ),
    (
        "grpc-port-zero",
        "spec/containers/0/startupProbe",
        {"grpc": {"port": 0}},
        f"{C}.startupProbe.grpc.port",
        "must be between 1 and 65535, got 0",
    ),
]


@pytest.mark.parametrize(
    ("path", "value", "field", "problem"),
    [case[1:] for case in CONTAINER_CASES],
    ids=[case[0] for case in CONTAINER_CASES],
)
def test_containers_the_api_server_refuses(path: str, value: Any, field: str, problem: str) -> None:
    error = the_error(edited(pod(), path, value))
    assert error.subject == {
        "key": "tool.stagegate.deploy.manifests",
        "file": SOURCE,
        "resource": "Pod/p",
        "field": field,
    }
    assert error.message == f"{SOURCE}: Pod/p {field}: {problem}"


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("spec/containers/0/imagePullPolicy", "Always"),
        ("spec/containers/0/imagePullPolicy", "IfNotPresent"),
        ("spec/containers/0/imagePullPolicy", "Never"),
        ("spec/containers/0/imagePullPolicy", None),
        ("spec/containers/0/command", ["python3", "-m", "web"]),
        ("spec/containers/0/args", []),
        ("spec/containers/0/args", None),
        ("spec/containers/0/workingDir", "/srv"),
        ("spec/containers/0/ports", [{"containerPort": 1}, {"containerPort": 65535, "hostPort": 65535}]),
        ("spec/containers/0/ports", [{"containerPort": 80, "hostPort": None}]),
        ("spec/containers/0/volumeMounts", [{"name": "d", "mountPath": "/data"}]),
        ("spec/containers/0/env", [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]),
        ("spec/containers/0/env", [{"name": "A", "value": None}, {"name": "B", "value": ""}]),
        ("spec/containers/0/readinessProbe", {"httpGet": {"path": "/", "port": "http"}}),
        ("spec/containers/0/livenessProbe", {"tcpSocket": {"port": 8080}}),
        ("spec/containers/0/startupProbe", {"grpc": {"port": 9090}}),
        ("spec/containers/0/livenessProbe", {"exec": {"command": ["true"]}}),  # no port to check
        ("spec/containers/0/name", "a" * 63),
    ],
)
def test_containers_the_api_server_accepts(path: str, value: Any) -> None:
    assert errors_of(edited(pod(), path, value)) == []


@pytest.mark.parametrize("probe", ["livenessProbe", "readinessProbe", "startupProbe"])
@pytest.mark.parametrize("handler", ["httpGet", "tcpSocket", "grpc"])
def test_every_probe_and_handler_has_its_port_checked(probe: str, handler: str) -> None:
    error = the_error(edited(pod(), f"spec/containers/0/{probe}", {handler: {"port": 70000}}))
    assert error.subject["field"] == f"{C}.{probe}.{handler}.port"
    assert error.message.endswith("must be between 1 and 65535, got 70000")


def test_a_long_value_is_shown_cut_in_the_error() -> None:
    shown = "x" * 58  # its repr, quotes included, is 60 characters: shown whole
    error = the_error(edited(pod(), "spec/containers/0/command", shown))
    assert error.message.endswith(f"got str '{shown}'")
    longer = "x" * 59
    error = the_error(edited(pod(), "spec/containers/0/command", longer))
    assert error.message.endswith(f"got str '{longer[:59]}…")


# -- every field the docker target reads, typed as the API server decodes it ------------------------

# (id, base, path, value, field, problem, the API server's words in the hint or "")
TYPED_CASES = [
    (
        "exec-command-a-string",
        pod,
        "spec/containers/0/readinessProbe",
        {"exec": {"command": "true"}},
        f"{C}.readinessProbe.exec.command",
        "must be a list of strings, got str 'true'",
        "json: cannot unmarshal string into Go value of type []string",
    ),
    (
        "exec-command-with-a-number",
        pod,
        "spec/containers/0/livenessProbe",
        {"exec": {"command": ["sleep", 1]}},
        f"{C}.livenessProbe.exec.command",
        "must be a list of strings, got list ['sleep', 1]",
        "json: cannot unmarshal number into Go value of type string",
    ),
    (
        "probe-without-handler",
        pod,
        "spec/containers/0/readinessProbe",
        {"periodSeconds": 1},
        f"{C}.readinessProbe",
        "must specify a handler type (exec, httpGet, tcpSocket, grpc)",
        "",
    ),
    (
        "probe-with-two-handlers",
        pod,
        "spec/containers/0/readinessProbe",
        {"exec": {"command": ["true"]}, "tcpSocket": {"port": 80}},
        f"{C}.readinessProbe",
        "may not specify more than 1 handler type, got exec, tcpSocket",
        "",
    ),
    (
        "probe-port-a-float",
        pod,
        "spec/containers/0/readinessProbe",
        {"httpGet": {"port": 80.5}},
        f"{C}.readinessProbe.httpGet.port",
        "must be an integer, got float 80.5",
        "json: cannot unmarshal number into Go value of type int32",
    ),
    (
        "probe-port-name-with-double-hyphen",
        pod,
        "spec/containers/0/readinessProbe",
        {"tcpSocket": {"port": "web--http"}},
        f"{C}.readinessProbe.tcpSocket.port",
        "'web--http' is neither a port number nor a valid port name",
        "",
    ),
    (
        "probe-path-a-number",
        pod,
        "spec/containers/0/readinessProbe",
        {"httpGet": {"port": 80, "path": 5}},
        f"{C}.readinessProbe.httpGet.path",
        "must be a string, got int 5",
        "json: cannot unmarshal number into Go value of type string",
    ),
    (
        "probe-scheme-lowercase",
        pod,
        "spec/containers/0/readinessProbe",
        {"httpGet": {"port": 80, "scheme": "https"}},
        f"{C}.readinessProbe.httpGet.scheme",
        "must be one of HTTP, HTTPS, got str 'https'",
        "",
    ),
    (
        "probe-headers-a-mapping",
        pod,
        "spec/containers/0/readinessProbe",
        {"httpGet": {"port": 80, "httpHeaders": {"X-A": "b"}}},
        f"{C}.readinessProbe.httpGet.httpHeaders",
        "must be a list, got dict {'X-A': 'b'}",
        "",
    ),
    (
        "probe-header-value-a-number",
        pod,
        "spec/containers/0/readinessProbe",
        {"httpGet": {"port": 80, "httpHeaders": [{"name": "X-A", "value": 1}]}},
        f"{C}.readinessProbe.httpGet.httpHeaders[0].value",
        "must be a string, got int 1",
        "json: cannot unmarshal number into Go value of type string",
    ),
    (
        "probe-header-without-name",
        pod,
        "spec/containers/0/readinessProbe",
        {"httpGet": {"port": 80, "httpHeaders": [{"value": "b"}]}},
        f"{C}.readinessProbe.httpGet.httpHeaders[0].name",
        "is required",
        "",
    ),
    (
        "grpc-service-a-number",
        pod,
        "spec/containers/0/livenessProbe",
        {"grpc": {"port": 9090, "service": 1}},
        f"{C}.livenessProbe.grpc.service",
        "must be a string, got int 1",
        "json: cannot unmarshal number into Go value of type string",
    ),
    (
        "period-a-string",
        pod,
        "spec/containers/0/readinessProbe",
        {"exec": {"command": ["true"]}, "periodSeconds": "1"},
        f"{C}.readinessProbe.periodSeconds",
        "must be an integer, got str '1'",
        "json: cannot unmarshal string into Go value of type int32",
    ),
    (
        "failure-threshold-a-boolean",
        pod,
        "spec/containers/0/startupProbe",
        {"exec": {"command": ["true"]}, "failureThreshold": True},
        f"{C}.startupProbe.failureThreshold",
        "must be an integer, got bool True",
        "json: cannot unmarshal bool into Go value of type int32",
    ),
    (
        "timeout-negative",
        pod,
        "spec/containers/0/livenessProbe",
        {"exec": {"command": ["true"]}, "timeoutSeconds": -1},
        f"{C}.livenessProbe.timeoutSeconds",
        "must be >= 0, got -1",
        "",
    ),
    (
        "post-start-command-a-string",
        pod,
        "spec/containers/0/lifecycle",
        {"postStart": {"exec": {"command": "touch /ready"}}},
        f"{C}.lifecycle.postStart.exec.command",
        "must be a list of strings, got str 'touch /ready'",
        "json: cannot unmarshal string into Go value of type []string",
    ),
    (
        "pre-stop-sleep-a-string",
        pod,
        "spec/containers/0/lifecycle",
        {"preStop": {"sleep": {"seconds": "5"}}},
        f"{C}.lifecycle.preStop.sleep.seconds",
        "must be an integer, got str '5'",
        "json: cannot unmarshal string into Go value of type int64",
    ),
    (
        "pre-stop-without-handler",
        pod,
        "spec/containers/0/lifecycle",
        {"preStop": {}},
        f"{C}.lifecycle.preStop",
        "must specify a handler type (exec, httpGet, tcpSocket, sleep)",
        "",
    ),
    (
        "privileged-a-string",
        pod,
        "spec/containers/0/securityContext",
        {"privileged": "true"},
        f"{C}.securityContext.privileged",
        "must be a boolean (true or false), got str 'true'",
        "json: cannot unmarshal string into Go value of type bool",
    ),
    (
        "run-as-user-a-string",
        pod,
        "spec/containers/0/securityContext",
        {"runAsUser": "1000"},
        f"{C}.securityContext.runAsUser",
        "must be an integer, got str '1000'",
        "json: cannot unmarshal string into Go value of type int64",
    ),
    (
        "capabilities-a-string",
        pod,
        "spec/containers/0/securityContext",
        {"capabilities": {"drop": "ALL"}},
        f"{C}.securityContext.capabilities.drop",
        "must be a list of strings, got str 'ALL'",
        "json: cannot unmarshal string into Go value of type []string",
    ),
    (
        "tty-a-string",
        pod,
        "spec/containers/0/tty",
        "yes",
        f"{C}.tty",
        "must be a boolean (true or false), got str 'yes'",
        "json: cannot unmarshal string into Go value of type bool",
    ),
    (
        "port-name-a-number",
        pod,
        "spec/containers/0/ports",
        [{"containerPort": 80, "name": 80}],
        f"{C}.ports[0].name",
        "must be a string, got int 80",
        "json: cannot unmarshal number into Go value of type string",
    ),
    (
        "port-name-too-long",
        pod,
        "spec/containers/0/ports",
        [{"containerPort": 80, "name": "a-very-long-name"}],
        f"{C}.ports[0].name",
        "'a-very-long-name' is neither a port number nor a valid port name",
        "",
    ),
    (
        "port-protocol-lowercase",
        pod,
        "spec/containers/0/ports",
        [{"containerPort": 80, "protocol": "tcp"}],
        f"{C}.ports[0].protocol",
        "must be one of TCP, UDP, SCTP, got str 'tcp'",
        "",
    ),
    (
        "mount-read-only-a-string",
        pod,
        "spec/containers/0/volumeMounts",
        [{"name": "d", "mountPath": "/d", "readOnly": "true"}],
        f"{C}.volumeMounts[0].readOnly",
        "must be a boolean (true or false), got str 'true'",
        "json: cannot unmarshal string into Go value of type bool",
    ),
    (
        "mount-without-name",
        pod,
        "spec/containers/0/volumeMounts",
        [{"mountPath": "/d"}],
        f"{C}.volumeMounts[0].name",
        "is required",
        "",
    ),
    (
        "env-value-a-boolean",
        pod,
        "spec/containers/0/env",
        [{"name": "DEBUG", "value": True}],
        f"{C}.env[0].value",
        "must be a string, got bool True",
        "json: cannot unmarshal bool into Go value of type string",
    ),
    (
        "env-secret-key-missing",
        pod,
        "spec/containers/0/env",
        [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "creds"}}}],
        f"{C}.env[0].valueFrom.secretKeyRef.key",
        "is required",
        "",
    ),
    (
        "env-config-map-optional-a-string",
        pod,
        "spec/containers/0/env",
        [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k", "optional": "yes"}}}],
        f"{C}.env[0].valueFrom.configMapKeyRef.optional",
        "must be a boolean (true or false), got str 'yes'",
        "json: cannot unmarshal string into Go value of type bool",
    ),
    (
        "env-field-path-a-list",
        pod,
        "spec/containers/0/env",
        [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": ["metadata.name"]}}}],
        f"{C}.env[0].valueFrom.fieldRef.fieldPath",
        "must be a string, got list ['metadata.name']",
        "json: cannot unmarshal array into Go value of type string",
    ),
    (
        "env-from-a-mapping",
        pod,
        "spec/containers/0/envFrom",
        {"configMapRef": {"name": "c"}},
        f"{C}.envFrom",
        "must be a list, got dict {'configMapRef': {'name': 'c'}}",
        "",
    ),
    (
        "env-from-ref-a-string",
        pod,
        "spec/containers/0/envFrom",
        [{"secretRef": "creds"}],
        f"{C}.envFrom[0].secretRef",
        "must be a mapping, got str 'creds'",
        "",
    ),
    (
        "env-from-prefix-a-number",
        pod,
        "spec/containers/0/envFrom",
        [{"prefix": 1, "configMapRef": {"name": "c"}}],
        f"{C}.envFrom[0].prefix",
        "must be a string, got int 1",
        "json: cannot unmarshal number into Go value of type string",
    ),
    (
        "grace-period-a-string",
        pod,
        "spec/terminationGracePeriodSeconds",
        "30",
        "spec.terminationGracePeriodSeconds",
        "must be an integer, got str '30'",
        "json: cannot unmarshal string into Go value of type int64",
    ),
    (
        "host-network-a-string",
        pod,
        "spec/hostNetwork",
        "false",
        "spec.hostNetwork",
        "must be a boolean (true or false), got str 'false'",
        "json: cannot unmarshal string into Go value of type bool",
    ),
    (
        "pod-fs-group-a-float",
        pod,
        "spec/securityContext",
        {"fsGroup": 2000.5},
        "spec.securityContext.fsGroup",
        "must be an integer, got float 2000.5",
        "json: cannot unmarshal number into Go value of type int64",
    ),
    (
        "volumes-a-mapping",
        pod,
        "spec/volumes",
        {"name": "d", "emptyDir": {}},
        "spec.volumes",
        "must be a list, got dict {'name': 'd', 'emptyDir': {}}",
        "",
    ),
    (
        "volume-without-name",
        pod,
        "spec/volumes",
        [{"emptyDir": {}}],
        "spec.volumes[0].name",
        "is required and must be a string, got NoneType None",
        "",
    ),
    (
        "empty-dir-a-string",
        pod,
        "spec/volumes",
        [{"name": "d", "emptyDir": "yes"}],
        "spec.volumes[0].emptyDir",
        "must be a mapping, got str 'yes'",
        "",
    ),
    (
        "default-mode-a-string",
        pod,
        "spec/volumes",
        [{"name": "d", "configMap": {"name": "c", "defaultMode": "0644"}}],
        "spec.volumes[0].configMap.defaultMode",
        "must be an integer, got str '0644'",
        "json: cannot unmarshal string into Go value of type int32",
    ),
    (
        "default-mode-too-large",
        pod,
        "spec/volumes",
        [{"name": "d", "secret": {"secretName": "s", "defaultMode": 644}}],
        "spec.volumes[0].secret.defaultMode",
        "must be between 0 and 511, got 644",
        "",
    ),
    (
        "volume-item-path-a-number",
        pod,
        "spec/volumes",
        [{"name": "d", "configMap": {"name": "c", "items": [{"key": "k", "path": 1}]}}],
        "spec.volumes[0].configMap.items[0].path",
        "must be a string, got int 1",
        "json: cannot unmarshal number into Go value of type string",
    ),
    (
        "secret-optional-a-string",
        pod,
        "spec/volumes",
        [{"name": "d", "secret": {"secretName": "s", "optional": "no"}}],
        "spec.volumes[0].secret.optional",
        "must be a boolean (true or false), got str 'no'",
        "json: cannot unmarshal string into Go value of type bool",
    ),
    (
        "job-backoff-limit-a-string",
        job,
        "spec/backoffLimit",
        "6",
        "spec.backoffLimit",
        "must be an integer, got str '6'",
        "json: cannot unmarshal string into Go value of type int32",
    ),
    (
        "job-completions-a-float",
        job,
        "spec/completions",
        1.5,
        "spec.completions",
        "must be an integer, got float 1.5",
        "json: cannot unmarshal number into Go value of type int32",
    ),
    (
        "job-parallelism-negative",
        job,
        "spec/parallelism",
        -1,
        "spec.parallelism",
        "must be >= 0, got -1",
        "",
    ),
    (
        "cron-job-backoff-limit-a-string",
        cron_job,
        "spec/jobTemplate/spec/backoffLimit",
        "6",
        "spec.jobTemplate.spec.backoffLimit",
        "must be an integer, got str '6'",
        "json: cannot unmarshal string into Go value of type int32",
    ),
    (
        "progress-deadline-a-string",
        deployment,
        "spec/progressDeadlineSeconds",
        "600",
        "spec.progressDeadlineSeconds",
        "must be an integer, got str '600'",
        "json: cannot unmarshal string into Go value of type int32",
    ),
    (
        "service-name-a-number",
        lambda: deployment("StatefulSet"),
        "spec/serviceName",
        5,
        "spec.serviceName",
        "must be a string, got int 5",
        "json: cannot unmarshal number into Go value of type string",
    ),
    (
        "service-selector-value-a-number",
        service,
        "spec/selector",
        {"app": 1},
        "spec.selector.app",
        "must be a string, got int 1",
        "json: cannot unmarshal number into Go value of type string",
    ),
    (
        "service-protocol-lowercase",
        service,
        "spec/ports/1/protocol",
        "udp",
        "spec.ports[1].protocol",
        "must be one of TCP, UDP, SCTP, got str 'udp'",
        "",
    ),
    (
        "service-type-unknown",
        service,
        "spec/type",
        "Internal",
        "spec.type",
        "must be one of ClusterIP, NodePort, LoadBalancer, ExternalName, got str 'Internal'",
        "",
    ),
    (
        "service-node-port-a-string",
        service,
        "spec/ports/0/nodePort",
        "30080",
        "spec.ports[0].nodePort",
        "must be a port number (1-65535), got str '30080': a name is not allowed here",
        "",
    ),
]


@pytest.mark.parametrize(
    ("base", "path", "value", "field", "problem", "api"),
    [case[1:] for case in TYPED_CASES],
    ids=[case[0] for case in TYPED_CASES],
)
def test_a_field_of_the_wrong_type_is_refused_naming_it(
    base, path: str, value: Any, field: str, problem: str, api: str
) -> None:
    doc = base()
    error = the_error(edited(doc, path, value))
    resource = f"{doc['kind']}/{doc['metadata']['name']}"
    assert error.code is Code.MANIFEST_INVALID
    assert error.subject["field"] == field
    assert error.message == f"{SOURCE}: {resource} {field}: {problem}"
    said = f"fix {field} of {resource} in {SOURCE}; the API server would reject it"
    assert error.hint == (f"{said} ({api})" if api else said)


# (base, path, value): the right type of each field above, which must pass
TYPED_ACCEPTED = [
    (pod, "spec/containers/0/readinessProbe", {"exec": {"command": ["true"]}, "periodSeconds": 1}),
    (pod, "spec/containers/0/readinessProbe", {"exec": {"command": []}, "failureThreshold": 0}),
    (
        pod,
        "spec/containers/0/readinessProbe",
        {"httpGet": {"port": "web-http", "path": "/", "scheme": "HTTPS"}},
    ),
    (
        pod,
        "spec/containers/0/readinessProbe",
        {
            "httpGet": {
                "port": 80,
                "host": "a",
                "httpHeaders": [{"name": "X-A", "value": "b"}, {"name": "X-B"}],
            }
        },
    ),
    (
        pod,
        "spec/containers/0/livenessProbe",
        {"grpc": {"port": 9090, "service": "health"}, "timeoutSeconds": 5},
    ),
    (pod, "spec/containers/0/livenessProbe", {"tcpSocket": {"port": 80}, "exec": None}),  # null: not given
    (pod, "spec/containers/0/startupProbe", {"tcpSocket": {"port": 80}, "terminationGracePeriodSeconds": 5}),
    (pod, "spec/containers/0/lifecycle", {"postStart": {"exec": {"command": ["touch", "/ready"]}}}),
    (pod, "spec/containers/0/lifecycle", {"preStop": {"sleep": {"seconds": 5}}, "postStart": None}),
    (pod, "spec/containers/0/lifecycle", {"preStop": {"httpGet": {"port": "http", "path": "/stop"}}}),
    (
        pod,
        "spec/containers/0/securityContext",
        {
            "privileged": False,
            "runAsUser": 1000,
            "runAsGroup": 0,
            "runAsNonRoot": True,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"], "add": []},
        },
    ),
    (pod, "spec/containers/0/tty", True),
    (pod, "spec/containers/0/stdin", False),
    (pod, "spec/containers/0/ports", [{"containerPort": 80, "name": "http", "protocol": "UDP"}]),
    (pod, "spec/containers/0/ports", [{"containerPort": 80, "name": "a-15-characters"}]),
    (
        pod,
        "spec/containers/0/volumeMounts",
        [{"name": "d", "mountPath": "/d", "readOnly": True, "subPath": "x"}],
    ),
    (pod, "spec/containers/0/env", [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]),
    (
        pod,
        "spec/containers/0/env",
        [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k", "optional": True}}}],
    ),
    (
        pod,
        "spec/containers/0/envFrom",
        [{"prefix": "APP_", "configMapRef": {"name": "c", "optional": False}}],
    ),
    (pod, "spec/containers/0/envFrom", [{"secretRef": {"name": "s"}}]),
    (pod, "spec/terminationGracePeriodSeconds", 0),
    (pod, "spec/hostNetwork", False),
    (pod, "spec/securityContext", {"fsGroup": 2000, "runAsUser": 1000, "runAsNonRoot": True}),
    (
        pod,
        "spec/volumes",
        [
            {"name": "a", "emptyDir": {}},
            {"name": "b", "emptyDir": None},
            {
                "name": "c",
                "configMap": {"name": "c", "defaultMode": 0o644, "items": [{"key": "k", "path": "p"}]},
            },
            {"name": "d", "secret": {"secretName": "s", "defaultMode": 0o777, "optional": True}},
            {"name": "e", "secret": {"secretName": "s", "items": [{"key": "k", "path": "p", "mode": 0}]}},
        ],
    ),
    (job, "spec/backoffLimit", 0),
    (job, "spec/completions", 3),
    (job, "spec/parallelism", 2),
    (job, "spec/ttlSecondsAfterFinished", 100),
    (cron_job, "spec/jobTemplate/spec/backoffLimit", 2),
    (deployment, "spec/progressDeadlineSeconds", 600),
    (deployment, "spec/revisionHistoryLimit", 0),
    (lambda: deployment("StatefulSet"), "spec/serviceName", "db"),
    (service, "spec/selector", {"app": "web"}),
    (service, "spec/ports/1/protocol", "SCTP"),
    (service, "spec/type", "NodePort"),
    (service, "spec/ports/0/nodePort", 30080),
    (service, "spec/clusterIP", "None"),
]


@pytest.mark.parametrize(("base", "path", "value"), TYPED_ACCEPTED)
def test_a_field_of_the_right_type_passes(base, path: str, value: Any) -> None:
    assert errors_of(edited(base(), path, value)) == []


# -- the rules agree with the Kubernetes OpenAPI schema ----------------------------------------------

# (base, path, value, valid): each field both ways. The schema (kubernetes-validate's strict v1.32
# schemas) checks JSON types only: ranges, enums and "one handler" are the API server's validation,
# tested above. Where it is looser than the API server's decoder (1.0 is a JSON Schema integer; Go's
# decoder refuses it for an int32), the validation follows the decoder: SCHEMA_LOOSER.
SCHEMA_CASES = [
    (pod, "spec/containers/0/command", ["sh", "-c"], True),
    (pod, "spec/containers/0/command", "sh -c", False),
    (pod, "spec/containers/0/args", ["--port", 80], False),
    (pod, "spec/containers/0/workingDir", 5, False),
    (pod, "spec/containers/0/readinessProbe", {"exec": {"command": ["true"]}}, True),
    (pod, "spec/containers/0/readinessProbe", {"exec": {"command": "true"}}, False),
    (pod, "spec/containers/0/readinessProbe", {"httpGet": {"port": "http"}}, True),
    (pod, "spec/containers/0/readinessProbe", {"httpGet": {"port": 80.5}}, False),
    (pod, "spec/containers/0/readinessProbe", {"httpGet": {"port": True}}, False),
    (pod, "spec/containers/0/readinessProbe", {"httpGet": {"port": [80]}}, False),
    (pod, "spec/containers/0/readinessProbe", {"httpGet": {"port": 80, "path": 5}}, False),
    (
        pod,
        "spec/containers/0/readinessProbe",
        {"httpGet": {"port": 80, "httpHeaders": [{"name": "A", "value": "b"}]}},
        True,
    ),
    (pod, "spec/containers/0/readinessProbe", {"httpGet": {"port": 80, "httpHeaders": {"A": "b"}}}, False),
    (
        pod,
        "spec/containers/0/readinessProbe",
        {"httpGet": {"port": 80, "httpHeaders": [{"name": "A", "value": 1}]}},
        False,
    ),
    (pod, "spec/containers/0/readinessProbe", {"tcpSocket": {"port": 80}}, True),
    (pod, "spec/containers/0/readinessProbe", {"tcpSocket": {"port": {"number": 80}}}, False),
    (pod, "spec/containers/0/readinessProbe", {"grpc": {"port": 9090}}, True),
    (pod, "spec/containers/0/readinessProbe", {"grpc": {"port": "grpc"}}, False),
    (pod, "spec/containers/0/readinessProbe", {"exec": {"command": ["a"]}, "periodSeconds": 1}, True),
    (pod, "spec/containers/0/readinessProbe", {"exec": {"command": ["a"]}, "periodSeconds": "1"}, False),
    (pod, "spec/containers/0/readinessProbe", {"exec": {"command": ["a"]}, "successThreshold": True}, False),
    (pod, "spec/containers/0/readinessProbe", {"exec": {"command": ["a"]}, "timeoutSeconds": 1.5}, False),
    (pod, "spec/containers/0/lifecycle", {"postStart": {"exec": {"command": ["a"]}}}, True),
    (pod, "spec/containers/0/lifecycle", {"postStart": {"exec": {"command": "a"}}}, False),
    (pod, "spec/containers/0/lifecycle", {"preStop": {"httpGet": {"port": 80.5}}}, False),
    (pod, "spec/containers/0/lifecycle", {"preStop": {"sleep": {"seconds": 5}}}, True),
    (pod, "spec/containers/0/lifecycle", {"preStop": {"sleep": {"seconds": "5"}}}, False),
    (pod, "spec/containers/0/securityContext", {"privileged": True, "runAsUser": 1000}, True),
    (pod, "spec/containers/0/securityContext", {"privileged": "true"}, False),
    (pod, "spec/containers/0/securityContext", {"runAsUser": "1000"}, False),
    (pod, "spec/containers/0/securityContext", {"capabilities": {"drop": "ALL"}}, False),
    (pod, "spec/containers/0/env", [{"name": "A", "value": "1"}], True),
    (pod, "spec/containers/0/env", [{"name": "A", "value": 1}], False),
    (
        pod,
        "spec/containers/0/env",
        [{"name": "A", "valueFrom": {"secretKeyRef": {"key": "k", "optional": "yes"}}}],
        False,
    ),
    (pod, "spec/containers/0/env", [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": ["a"]}}}], False),
    (pod, "spec/containers/0/envFrom", [{"configMapRef": {"name": "c"}, "prefix": "A_"}], True),
    (pod, "spec/containers/0/envFrom", {"configMapRef": {"name": "c"}}, False),
    (pod, "spec/containers/0/envFrom", [{"configMapRef": {"name": "c"}, "prefix": 1}], False),
    (pod, "spec/containers/0/ports", [{"containerPort": 80, "name": "http"}], True),
    (pod, "spec/containers/0/ports", [{"containerPort": "80"}], False),
    (pod, "spec/containers/0/ports", [{"containerPort": 80, "name": 80}], False),
    (pod, "spec/containers/0/volumeMounts", [{"name": "d", "mountPath": "/d", "readOnly": True}], True),
    (pod, "spec/containers/0/volumeMounts", [{"name": "d", "mountPath": "/d", "readOnly": "true"}], False),
    (pod, "spec/containers/0/tty", True, True),
    (pod, "spec/containers/0/tty", "true", False),
    (pod, "spec/terminationGracePeriodSeconds", 30, True),
    (pod, "spec/terminationGracePeriodSeconds", "30", False),
    (pod, "spec/hostNetwork", "false", False),
    (pod, "spec/securityContext", {"fsGroup": "2000"}, False),
    (pod, "spec/volumes", [{"name": "d", "configMap": {"name": "c", "defaultMode": 420}}], True),
    (pod, "spec/volumes", [{"name": "d", "configMap": {"name": "c", "defaultMode": "0644"}}], False),
    (pod, "spec/volumes", [{"name": "d", "secret": {"secretName": "s", "optional": "no"}}], False),
    (
        pod,
        "spec/volumes",
        [{"name": "d", "configMap": {"name": "c", "items": [{"key": "k", "path": 1}]}}],
        False,
    ),
    (pod, "spec/volumes", [{"name": "d", "emptyDir": "yes"}], False),
    (job, "spec/backoffLimit", 6, True),
    (job, "spec/backoffLimit", "6", False),
    (job, "spec/completions", 1.5, False),
    (job, "spec/parallelism", True, False),
    (deployment, "spec/replicas", 2, True),
    (deployment, "spec/replicas", "2", False),
    (deployment, "spec/progressDeadlineSeconds", "600", False),
    (lambda: deployment("StatefulSet"), "spec/serviceName", 5, False),
    (service, "spec/ports/0/targetPort", "http", True),
    (service, "spec/ports/0/targetPort", 80.5, False),
    (service, "spec/ports/0/nodePort", "30080", False),
    (service, "spec/selector", {"app": "web"}, True),
    (service, "spec/selector", {"app": 1}, False),
    (service, "spec/ports/0/protocol", 6, False),
]
SCHEMA_LOOSER = [
    (pod, "spec/containers/0/readinessProbe", {"exec": {"command": ["a"]}, "periodSeconds": 1.0}),
    (job, "spec/backoffLimit", 6.0),
]


def _schema_accepts(doc: dict[str, Any]) -> bool:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    try:
        kubernetes_validate.validate(doc, "1.32", strict=True)
    except kubernetes_validate.ValidationError:
        return False
    return True


@pytest.mark.parametrize(
    ("base", "path", "value", "valid"),
    SCHEMA_CASES,
    ids=[
        f"{path.split('/')[-1]}-{'valid' if valid else 'invalid'}-{i}"
        for i, (_, path, _, valid) in enumerate(SCHEMA_CASES)
    ],
)
def test_the_rules_agree_with_the_kubernetes_schema(base, path: str, value: Any, valid: bool) -> None:
    doc = edited(base(), path, value)
    assert _schema_accepts(doc) is valid
    assert (errors_of(doc) == []) is valid, [e.message for e in errors_of(doc)]


@pytest.mark.parametrize(("base", "path", "value"), SCHEMA_LOOSER)
def test_where_the_schema_is_looser_the_rules_follow_the_decoder(base, path: str, value: Any) -> None:
    doc = edited(base(), path, value)
    assert _schema_accepts(doc)
    assert "must be an integer, got float" in the_error(doc).message
