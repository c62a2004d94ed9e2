"""The fixes behind the hostile-input fuzz (tests/integration/test_hostile_inputs.py), each
checked both ways: the bad input is refused precisely, the good one still passes."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest
from stagegate import buildcontext, hashing, manifests
from stagegate.config import interpolate
from stagegate.dockerfile import Dockerfile
from stagegate.errors import Code, StagegateError
from stagegate.manifests import ManifestObject, kustomize_reason, validation_errors

KEY = "tool.stagegate.images[0].build_args.X"


# -- ${X:?message} as the shell does it --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("${X:?need X}", {"X": "value"}, "value"),
        ("${X?need X}", {"X": ""}, ""),  # set but empty is fine without the colon
        ("a-${X:?}-b", {"X": "v"}, "a-v-b"),
        ("$${X:?no}", {}, "${X:?no}"),
    ],
)
def test_required_variable_set(text: str, env: dict[str, str], expected: str) -> None:
    assert interpolate(text, env, KEY) == expected


@pytest.mark.parametrize(
    ("text", "env", "said"),
    [
        ("${X:?need the registry}", {}, "X: need the registry"),
        ("${X:?need the registry}", {"X": ""}, "X: need the registry"),
        ("${X?}", {}, "X: parameter not set"),
        ("${X:?}", {"X": ""}, "X: parameter null or not set"),
    ],
)
def test_required_variable_unset_is_an_error_naming_it(text: str, env: dict[str, str], said: str) -> None:
    with pytest.raises(StagegateError) as info:
        interpolate(text, env, KEY)
    assert info.value.code is Code.CONFIG_INVALID
    assert info.value.message.endswith(said)
    assert info.value.subject == {"key": KEY, "variable": "X"}
    assert "X" in info.value.hint


# -- a UTF-8 BOM in a Dockerfile -----------------------------------------------------------


def test_dockerfile_bom_is_dropped_as_docker_drops_it() -> None:
    parsed = Dockerfile.parse("\ufeffFROM scratch\nCOPY f /f\n")
    assert [i.keyword for i in parsed.instructions] == ["FROM", "COPY"]
    assert parsed.base_refs({})[0].ref == "scratch"


def test_a_bom_elsewhere_is_not_dropped() -> None:
    with pytest.raises(ValueError, match="not an instruction"):
        Dockerfile.parse("FROM scratch\n\ufeffCOPY f /f\n")


# -- special files in build contexts -----------------------------------------------------------


def special_context(tmp_path: Path) -> Path:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "f").write_text("f\n")
    os.mkfifo(context / "fifo")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(os.fspath(context / "sock"))
    sock.close()
    return context


def test_special_files_are_hashed_by_type_and_never_opened(tmp_path: Path) -> None:
    context = special_context(tmp_path)
    files = hashing.ContextHasher(None).files(context)  # a FIFO opened for reading would block here
    assert sorted(files) == ["f", "fifo", "sock"]
    fifo = hashing.file_digest(context / "fifo")
    assert fifo != hashing.file_digest(context / "sock")
    # Replacing the FIFO by a regular file (even an empty one) changes the hash.
    (context / "fifo").unlink()
    (context / "fifo").write_text("")
    assert hashing.file_digest(context / "fifo") != fifo


def test_device_numbers_are_part_of_a_device_digest(tmp_path: Path) -> None:
    try:
        os.mknod(tmp_path / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
        os.mknod(tmp_path / "zero", stat.S_IFCHR | 0o600, os.makedev(1, 5))
    except PermissionError:
        pytest.skip("creating a device needs root")
    assert hashing.file_digest(tmp_path / "null") != hashing.file_digest(tmp_path / "zero")


@pytest.mark.parametrize("make", [os.mkfifo, os.mkdir], ids=["fifo", "directory"])
def test_dockerignore_that_is_not_a_file_is_refused(tmp_path: Path, make) -> None:
    make(tmp_path / ".dockerignore")
    with pytest.raises(StagegateError) as info:
        hashing.ContextHasher(None).files(tmp_path)
    assert info.value.code is Code.BUILD_CONTEXT_INVALID
    assert ".dockerignore" in info.value.message
    assert buildcontext.read_dockerignore(tmp_path / "nowhere") == ""


def test_regular_dockerignore_still_read(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text("skip\n")
    (tmp_path / "skip").write_text("x")
    (tmp_path / "keep").write_text("x")
    assert list(hashing.ContextHasher(None).files(tmp_path)) == [".dockerignore", "keep"]


# -- manifests ------------------------------------------------------------------------------


def deployment(**container: object) -> ManifestObject:
    return ManifestObject(
        "m.yaml",
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web", "tier": "front"}},
                    "spec": {"containers": [{"name": "web", "image": "web:1", **container}]},
                },
            },
        },
    )


def test_what_the_api_server_accepts_passes() -> None:
    objects = [
        deployment(
            ports=[{"name": "http", "containerPort": 8080}],
            readinessProbe={"httpGet": {"path": "/", "port": "http"}},
            livenessProbe={"tcpSocket": {"port": 8080}},
            command=["python3"],
            args=["-m", "web"],
            workingDir="/srv",
            volumeMounts=[{"name": "data", "mountPath": "/data"}],
            imagePullPolicy="Never",
        ),
        ManifestObject(
            "s.yaml",
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "web"},
                "spec": {"ports": [{"port": 80, "targetPort": "http"}]},
            },
        ),
        ManifestObject(
            "c.yaml",
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "creds"},
                "data": {"password": "c2VjcmV0\n"},
                "stringData": {"token": "plain"},
            },
        ),
    ]
    assert validation_errors(objects) == []


def test_null_fields_are_unset_as_for_the_api_server() -> None:
    obj = deployment(
        imagePullPolicy=None, workingDir=None, command=None, ports=None, env=[{"name": "A", "value": None}]
    )
    obj.doc["spec"]["replicas"] = None
    assert validation_errors([obj]) == []


def test_a_probe_command_written_as_a_string_is_refused_not_split_into_letters() -> None:
    # the hostile tester's manifest: a string where the API server decodes a []string
    [error] = validation_errors([deployment(readinessProbe={"exec": {"command": "true"}})])
    assert error.code is Code.MANIFEST_INVALID
    assert error.subject["field"] == "spec.template.spec.containers[0] (web).readinessProbe.exec.command"
    assert error.message == (
        "m.yaml: Deployment/web spec.template.spec.containers[0] (web).readinessProbe.exec.command: "
        "must be a list of strings, got str 'true'"
    )
    assert error.hint.endswith("(json: cannot unmarshal string into Go value of type []string)")
    assert validation_errors([deployment(readinessProbe={"exec": {"command": ["true"]}})]) == []


def test_every_handler_of_a_hook_is_checked_like_a_probe_s() -> None:
    hooks = {"postStart": {"exec": {"command": ["true"]}}, "preStop": {"tcpSocket": {"port": "http"}}}
    assert validation_errors([deployment(lifecycle=hooks)]) == []
    bad = {"preStop": {"tcpSocket": {"port": 0}}}
    [error] = validation_errors([deployment(lifecycle=bad)])
    assert error.subject["field"].endswith("(web).lifecycle.preStop.tcpSocket.port")


def test_match_expressions_that_select_the_template_pass() -> None:
    obj = deployment()
    obj.doc["spec"]["selector"] = {
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["front"]},
            {"key": "canary", "operator": "DoesNotExist"},
        ]
    }
    assert validation_errors([obj]) == []


def test_validate_raises_the_first_with_the_others() -> None:
    bad = [deployment(workingDir="srv"), deployment(command="python3 -m web")]
    with pytest.raises(StagegateError) as info:
        manifests.validate(bad)
    assert info.value.code is Code.MANIFEST_INVALID
    assert "workingDir" in info.value.subject["field"]
    assert [e.subject["field"] for e in info.value.others] == [
        "spec.template.spec.containers[0] (web).command"
    ]
    assert info.value.subject["resource"] == "Deployment/web"


def test_secret_value_never_in_the_message() -> None:
    obj = ManifestObject(
        "c.yaml",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "c"},
            "data": {"pw": "hunter2 is secret!"},
        },
    )
    [error] = validation_errors([obj])
    assert "hunter2" not in error.message + error.hint


def test_kustomize_reason_is_the_klog_error_without_the_repository_path(tmp_path: Path) -> None:
    stderr = (
        f'E1201 22:53:22.205488   16855 run.go:72] "command failed" err="accumulating resources: '
        f'lstat {tmp_path}/k8s/missing.yaml: no such file or directory \\"quoted\\""\n'
    )
    assert kustomize_reason(stderr, tmp_path) == (
        'accumulating resources: lstat k8s/missing.yaml: no such file or directory "quoted"'
    )
    assert kustomize_reason("error: something broke\n", tmp_path) == "something broke"
    assert kustomize_reason("first\nlast line\n", tmp_path) == "last line"


def test_deploy_validates_what_it_renders_before_anything_is_applied(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from stagegate.stages.deploy import rendered_objects

    (tmp_path / "k8s").mkdir()
    (tmp_path / "k8s" / "app.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n"
        "  containers: [{name: c, image: app, workingDir: relative}]\n"
    )
    ctx = SimpleNamespace(
        config=SimpleNamespace(
            deploy=SimpleNamespace(manifests=(tmp_path / "k8s",), kustomize_args=()), root=tmp_path
        ),
        run={"stages": {"build": {"outputs": {}}}},
    )
    with pytest.raises(StagegateError) as info:
        rendered_objects(ctx)  # type: ignore[arg-type]
    assert info.value.code is Code.MANIFEST_INVALID
    assert info.value.subject["file"] == "k8s/app.yaml"
    (tmp_path / "k8s" / "app.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: app, workingDir: /srv}]\n"
    )
    assert [obj.name for obj in rendered_objects(ctx)] == ["p"]  # type: ignore[arg-type]
