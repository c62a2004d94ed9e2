"""``kind create cluster``: kind's status lines, the node container, its containerd config, and
the kubeconfig; kind's config file read as strictly as kind reads it."""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import shutil
import socket
import time
from pathlib import Path

import yaml

from .formats import digest, go_duration, parse_go_duration
from .kubeconfig import merge_kubeconfig, refuse_default_kubeconfig
from .node import CRICTL_SCRIPT, docker, ensure_network, kind_network, remove_node, write_containerd_config
from .output import Failure, err
from .state import State

# kind v0.27.0's default node image, as its create status line shows it.
KIND_NODE_IMAGE = "kindest/node:v1.32.2"
DEFAULT_FAKE_NODE_IMAGE = "stagegate-test/busybox:1"


# kind: pkg/internal/cli/status.go, when stderr is not a terminal: " • %s  ..." then " ✓ %s".
STEP_NODES = "Preparing nodes 📦 "
STEP_CONFIG = "Writing configuration 📜"
STEP_CONTROL_PLANE = "Starting control-plane 🕹️"
STEP_CNI = "Installing CNI 🔌"
STEP_STORAGE = "Installing StorageClass 💾"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def kind_create(state: State, name: str, opts: dict) -> int:
    # kind: pkg/cmd/kind/create/cluster/createcluster.go and pkg/cluster/internal/create/create.go
    kubeconfig = opts.get("kubeconfig") or refuse_default_kubeconfig()
    config = read_kind_config(opts["config"]) if opts.get("config") else {}
    if opts.get("config"):  # --name, then $KIND_CLUSTER_NAME, then the config's name
        name = opts.get("name") or os.environ.get("KIND_CLUSTER_NAME") or config.get("name") or name
    if not re.fullmatch(r"[a-z0-9.-]+", name):
        raise Failure(
            f"ERROR: failed to create cluster: '{name}' is not a valid cluster name, "
            "cluster names must match `^[a-z0-9.-]+$`"
        )
    wait = parse_go_duration(opts.get("wait", "0"))
    if wait is None:
        raise Failure(
            f'ERROR: invalid argument "{opts["wait"]}" for "--wait" flag: time: invalid duration "{opts["wait"]}"'
        )
    if state.cluster(name) is not None:
        raise Failure(
            f'ERROR: failed to create cluster: node(s) already exist for a cluster with the name "{name}"'
        )
    scenario = state.scenario()
    node = f"{name}-control-plane"
    err(f'Creating cluster "{name}" ...')
    step(
        f"Ensuring node image ({opts.get('image', KIND_NODE_IMAGE).split('@')[0]}) 🖼"
    )  # --image: shown, not run
    network = kind_network()
    if os.environ.get("KIND_EXPERIMENTAL_DOCKER_NETWORK"):
        err("WARNING: Overriding docker network due to KIND_EXPERIMENTAL_DOCKER_NETWORK")
        err("WARNING: Here be dragons! This is not supported currently.")
    ensure_network(network)
    err(f" • {STEP_NODES}  ...")
    node_dir = state.cluster_dir(name) / "node"
    (node_dir / "images").mkdir(parents=True, exist_ok=True)
    crictl = state.root / "crictl"
    crictl.write_text(CRICTL_SCRIPT)
    crictl.chmod(0o755)
    run_argv = [
        "run", "-d", "--name", node, "--hostname", node,
        "--label", f"io.x-k8s.kind.cluster={name}", "--label", "io.x-k8s.kind.role=control-plane",
        "--net", network,
        "-v", f"{node_dir}:/fake-kind:ro", "-v", f"{crictl}:/usr/local/bin/crictl:ro",
        os.environ.get("FAKE_KIND_NODE_IMAGE", DEFAULT_FAKE_NODE_IMAGE), "sleep", "86400",
    ]  # fmt: skip
    result = docker(*run_argv)
    if result.returncode != 0:
        err(f" ✗ {STEP_NODES}")
        shutil.rmtree(state.cluster_dir(name), ignore_errors=True)
        raise Failure(
            f'ERROR: failed to create cluster: command "docker {shlex.join(run_argv)}" failed with error: '
            f"exit status {result.returncode}\nCommand Output: {result.stderr.strip()}"
        )
    inspected = docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", node)
    try:
        host_ip = (json.loads(inspected.stdout).get(network) or {}).get("IPAddress") or ""
    except ValueError:
        host_ip = ""
    cluster = {
        "name": name,
        "node": node,
        "network": network,
        "port": free_port(),
        "host_ip": host_ip or "172.18.0.2",
        "ca": fake_certificate(name),
        "created": time.time(),
        "api": False,
    }
    state.save_cluster(cluster)
    err(f" ✓ {STEP_NODES}")
    err(f" • {STEP_CONFIG}  ...")

    def failed_at(stage: str, why: str) -> Failure:
        """kind's ✗ line, the node removed (unless --retain), and its error."""
        err(f" ✗ {stage}")
        if not opts.get("retain"):
            remove_node(state, cluster)
            err(f'Deleted nodes: ["{node}"]')
        return Failure(f"ERROR: failed to create cluster: {why}")

    config_error = write_containerd_config(node, config.get("containerdConfigPatches") or [])
    if config_error:
        raise failed_at(STEP_CONFIG, config_error)
    err(f" ✓ {STEP_CONFIG}")
    err(f" • {STEP_CONTROL_PLANE}  ...")
    if isinstance(scenario.get("create_cluster_error"), str):
        raise failed_at(STEP_CONTROL_PLANE, scenario["create_cluster_error"])
    err(f" ✓ {STEP_CONTROL_PLANE}")
    step(STEP_CNI)
    step(STEP_STORAGE)
    if wait:
        step(f"Waiting ≤ {go_duration(wait)} for control-plane = Ready ⏳")
        err(" • Ready after 0s 💚")
    cluster["api"] = True
    state.save_cluster(cluster)
    merge_kubeconfig(Path(kubeconfig), cluster)
    err(f'Set kubectl context to "kind-{name}"')
    err(
        f"You can now use your cluster with:\n\nkubectl cluster-info --context kind-{name} --kubeconfig {shlex.quote(kubeconfig)}"
    )
    err("")
    err("Have a nice day! 👋")
    return 0


def fake_certificate(name: str) -> str:
    """base64 of a PEM block, as in a kubeconfig's *-data fields (the DER inside is not a certificate)."""
    body = base64.b64encode(bytes.fromhex(digest("ca", name, time.time()) * 12)).decode()
    pem = "-----BEGIN CERTIFICATE-----\n" + "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return base64.b64encode((pem + "\n-----END CERTIFICATE-----\n").encode()).decode()


def step(text: str) -> None:
    err(f" • {text}  ...")
    err(f" ✓ {text}")


def read_kind_config(path: str) -> dict:
    try:
        config = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError:
        raise Failure(
            f"ERROR: failed to create cluster: error reading file: open {path}: no such file or directory"
        ) from None
    if config.get("kind") != "Cluster" or config.get("apiVersion") != "kind.x-k8s.io/v1alpha4":
        raise Failure(
            f"ERROR: failed to create cluster: unknown apiVersion/kind in {path} (want kind.x-k8s.io/v1alpha4, Cluster)"
        )
    roles = [n.get("role") for n in config.get("nodes") or [{"role": "control-plane"}]]
    if roles != ["control-plane"]:
        raise Failure(f"ERROR: fake kind: {path}: only one control-plane node is supported (got {roles})")
    # kind: v1alpha4 Cluster.ContainerdConfigPatches is a []string, decoded strictly by
    # pkg/internal/apis/config/encoding (load.go: "unable to decode config", sigs.k8s.io/yaml's
    # Go json type error). The TOML inside is parsed later, when the nodes are configured.
    patches = config.get("containerdConfigPatches")
    if patches is not None:  # (a YAML null is Go's zero value: no patches, or an empty one)
        if not isinstance(patches, list):
            wrong, target = patches, "[]string"
        else:
            wrong, target = next(
                ((p, "string") for p in patches if not isinstance(p, (str, type(None)))), (None, "")
            )
        if target:
            go_type = {dict: "object", list: "array", str: "string", bool: "bool"}.get(type(wrong), "number")
            raise Failure(
                "ERROR: failed to create cluster: unable to decode config: error unmarshaling JSON: while "
                f"decoding JSON: json: cannot unmarshal {go_type} into Go struct field "
                f"Cluster.containerdConfigPatches of type {target}"
            )
        config["containerdConfigPatches"] = ["" if p is None else p for p in patches]
    return config
