"""The fake kubectl apply refuses what a v1.32 API server refuses, in kubectl's words.

The messages are checked twice: here against tests/fakes/fake_k8s/validation.py directly (no
Docker), and through `kubectl apply` on a fake cluster (tests/integration/test_fakes_strict.py),
where the exit code, the per-object ContinueOnError and "nothing of a refused object is stored"
are checked too.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.fakes.fake_k8s import validation as k8s_validation

ROOT = Path(__file__).resolve().parents[2]

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web"},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "image": "example/web:1",
                        "imagePullPolicy": "IfNotPresent",
                        "ports": [{"name": "http", "containerPort": 8080}],
                    }
                ]
            },
        },
    },
}
SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


def deployment(change) -> dict:
    obj = copy.deepcopy(DEPLOYMENT)
    change(obj)
    return obj


def container(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"]["containers"][0]


# (what is wrong, the manifest, the reason, the message kubectl prints for it alone)
INVALID = [
    (
        "unknown field spec.templte",
        deployment(lambda o: o["spec"].update(templte=o["spec"]["template"])),
        "BadRequest",
        'Error from server (BadRequest): error when creating "STDIN": Deployment in version "v1" cannot be '
        'handled as a Deployment: strict decoding error: unknown field "spec.templte"',
    ),
    (
        "replicas as a string",
        deployment(lambda o: o["spec"].update(replicas="two")),
        "BadRequest",
        'Error from server (BadRequest): error when creating "STDIN": Deployment in version "v1" cannot be '
        "handled as a Deployment: json: cannot unmarshal string into Go struct field "
        "DeploymentSpec.spec.replicas of type int32",
    ),
    (
        "a container without an image",
        deployment(lambda o: container(o).pop("image")),
        "Invalid",
        'The Deployment "web" is invalid: spec.template.spec.containers[0].image: Required value',
    ),
    (
        "no selector",
        deployment(lambda o: o["spec"].pop("selector")),
        "Invalid",
        'The Deployment "web" is invalid: \n* spec.selector: Required value\n'
        '* spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: '
        "`selector` does not match template `labels`",
    ),
    (
        "a selector that does not match the template",
        deployment(lambda o: o["spec"]["selector"]["matchLabels"].update(app="other")),
        "Invalid",
        'The Deployment "web" is invalid: spec.template.metadata.labels: Invalid value: '
        'map[string]string{"app":"web"}: `selector` does not match template `labels`',
    ),
    (
        "name Bad_Name",
        deployment(lambda o: o["metadata"].update(name="Bad_Name")),
        "Invalid",
        f'The Deployment "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": {SUBDOMAIN}',
    ),
    (
        "imagePullPolicy always",
        deployment(lambda o: container(o).update(imagePullPolicy="always")),
        "Invalid",
        'The Deployment "web" is invalid: spec.template.spec.containers[0].imagePullPolicy: '
        'Unsupported value: "always": supported values: "Always", "IfNotPresent", "Never"',
    ),
]


@pytest.mark.parametrize(("what", "obj", "reason", "message"), INVALID, ids=[i[0] for i in INVALID])
def test_the_api_server_refuses(what: str, obj: dict, reason: str, message: str) -> None:
    refusal = k8s_validation.check(obj, "apps")
    assert refusal is not None, what
    assert refusal.reason == reason
    tail = message.split(": ", 2)[-1] if reason == "BadRequest" else None
    if tail:
        assert message.endswith(refusal.message)
    else:
        assert refusal.causes == [
            c.removeprefix("* ") for c in message.split(" is invalid: ", 1)[1].strip().split("\n") if c
        ]


@pytest.mark.parametrize(
    ("change", "cause"),
    [
        (
            lambda o: container(o).update(name="Web_1"),
            'spec.template.spec.containers[0].name: Invalid value: "Web_1": a lowercase RFC 1123 label',
        ),
        (
            lambda o: container(o)["ports"][0].update(name="HTTP_port"),
            'spec.template.spec.containers[0].ports[0].name: Invalid value: "HTTP_port": must contain only '
            "alpha-numeric characters (a-z, 0-9), and hyphens (-)",
        ),
        (
            lambda o: container(o)["ports"][0].update(protocol="tcp"),
            'spec.template.spec.containers[0].ports[0].protocol: Unsupported value: "tcp": supported values: '
            '"SCTP", "TCP", "UDP"',
        ),
        (
            lambda o: o["spec"]["template"]["spec"].update(restartPolicy="Never"),
            'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"',
        ),
        (
            lambda o: o["spec"]["template"]["spec"].update(containers=[]),
            "spec.template.spec.containers: Required value",
        ),
    ],
)
def test_more_rules_of_the_api_server(change, cause: str) -> None:
    refusal = k8s_validation.check(deployment(change), "apps")
    assert refusal is not None
    assert refusal.reason == "Invalid"
    assert any(c.startswith(cause) for c in refusal.causes), refusal.causes


def test_unknown_fields_are_all_named_with_list_indexes() -> None:
    obj = deployment(
        lambda o: (container(o).update(imagePulPolicy="Always"), o["metadata"].update(lables={}))
    )
    refusal = k8s_validation.check(obj, "apps")
    assert refusal is not None
    assert refusal.message.endswith(
        'strict decoding error: unknown field "metadata.lables", '
        'unknown field "spec.template.spec.containers[0].imagePulPolicy"'
    )


def test_services_jobs_and_pods() -> None:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"type": "clusterIP", "ports": [{"port": 80, "protocol": "TCP"}]},
    }
    refusal = k8s_validation.check(service, "")
    assert refusal is not None
    assert refusal.message == (
        'Service "web" is invalid: spec.type: Unsupported value: "clusterIP": supported values: '
        '"ClusterIP", "ExternalName", "LoadBalancer", "NodePort"'
    )
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "migrate"},
        "spec": {"template": {"spec": {"containers": [{"name": "m", "image": "busybox:1.36"}]}}},
    }
    refusal = k8s_validation.check(job, "batch")
    assert refusal is not None
    assert refusal.causes == [
        'spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never"'
    ]
    job["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    assert k8s_validation.check(job, "batch") is None
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "p"}]},
    }
    refusal = k8s_validation.check(pod, "")
    assert refusal is not None
    assert refusal.causes == ["spec.containers[0].image: Required value"]


def test_custom_resources_against_their_crds_schema() -> None:
    crd = {
        "spec": {
            "group": "example.com",
            "versions": [
                {
                    "name": "v1",
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "required": ["size"],
                                    "properties": {
                                        "size": {"type": "integer"},
                                        "mode": {"type": "string", "enum": ["fast", "slow"]},
                                        "extra": {
                                            "type": "object",
                                            "x-kubernetes-preserve-unknown-fields": True,
                                        },
                                    },
                                }
                            },
                        }
                    },
                }
            ],
        }
    }

    def widget(spec: dict) -> dict:
        return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec}

    assert k8s_validation.check_custom(widget({"size": 1, "extra": {"any": {"thing": 1}}}), crd) is None
    refusal = k8s_validation.check_custom(widget({"size": 1, "colour": "red"}), crd)
    assert refusal is not None
    assert refusal.message == (
        'Widget in version "v1" cannot be handled as a Widget: strict decoding error: unknown field "spec.colour"'
    )
    refusal = k8s_validation.check_custom(widget({"size": "big", "mode": "medium"}), crd)
    assert refusal is not None
    assert refusal.causes == [
        'spec.size: Invalid value: "string": spec.size in body must be of type integer: "string"',
        'spec.mode: Unsupported value: "medium": supported values: "fast", "slow"',
    ]
    assert k8s_validation.check_custom(widget({"mode": "fast"}), crd).causes == ["spec.size: Required value"]
    no_schema = {"spec": {"group": "example.com", "versions": [{"name": "v1"}]}}
    assert k8s_validation.check_custom(widget({"anything": ["goes"]}), no_schema) is None


def fixture_objects() -> list[tuple[str, dict]]:
    found = []
    for path in sorted((ROOT / "tests" / "fixtures" / "manifests").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                items = doc.get("items", []) if doc["kind"].endswith("List") else [doc]
                found += [(path.name, item) for item in items]
    repo = ROOT / "tests" / "fixtures" / "realistic-repo" / "k8s"
    for path in sorted(repo.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        found += [(f"realistic-repo/{path.name}", doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


@pytest.mark.parametrize(("source", "obj"), fixture_objects(), ids=lambda v: v if isinstance(v, str) else "")
def test_the_fixture_manifests_are_valid(source: str, obj: dict) -> None:
    if obj["kind"] in ("FeatureFlag",):  # a custom resource: checked against its CRD on apply
        return
    assert k8s_validation.check(obj, obj["apiVersion"].rpartition("/")[0]) is None, source


def real_kubectl() -> str | None:
    bin_dir = str(ROOT / "tests" / "fakes" / "bin")
    path = ":".join(p for p in os.environ.get("PATH", "").split(":") if p != bin_dir)
    return shutil.which("kubectl", path=path)


@pytest.mark.skipif(real_kubectl() is None, reason="no real kubectl to render example/k8s with")
def test_the_examples_rendered_manifests_are_valid() -> None:
    rendered = subprocess.run(
        [real_kubectl(), "kustomize", str(ROOT / "example" / "k8s")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    objects = [d for d in yaml.safe_load_all(rendered) if d]
    assert objects
    for obj in objects:
        group = obj["apiVersion"].rpartition("/")[0]
        assert k8s_validation.check(obj, group) is None, obj["metadata"]["name"]
