"""The fake ``kind`` CLI: its commands and flags, ``get``, ``delete cluster``, ``export
kubeconfig`` and ``export logs``; ``create cluster`` is in :mod:`.kind_create`, ``load`` in
:mod:`.kind_load`."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import yaml

from .cli import Opt, parse_flags
from .kind_create import kind_create
from .kind_load import kind_load, kind_load_archive
from .kubeconfig import kubeconfig_of, merge_kubeconfig, refuse_default_kubeconfig
from .logs import log_text
from .node import docker, remove_node
from .output import Failure, err, out
from .state import State, read_json
from .timelines import all_pods

KIND_DISPLAY_VERSION = "kind v0.27.0 go1.23.6 linux/amd64"


KIND_NAME = Opt("name", "n")
KIND_COMMANDS: dict[tuple[str, ...], list[Opt]] = {
    ("version",): [],
    ("get", "clusters"): [],
    ("get", "nodes"): [KIND_NAME],
    ("get", "kubeconfig"): [KIND_NAME],
    ("create", "cluster"): [
        KIND_NAME,
        Opt("kubeconfig"),
        Opt("config"),
        Opt("image"),
        Opt("wait"),
        Opt("retain", takes_value=False),
    ],
    ("delete", "cluster"): [KIND_NAME, Opt("kubeconfig")],
    ("export", "kubeconfig"): [KIND_NAME, Opt("kubeconfig")],
    ("export", "logs"): [KIND_NAME],
    ("load", "docker-image"): [KIND_NAME, Opt("nodes", repeated=True)],
    # kind: pkg/cmd/kind/load/image-archive/image-archive.go (--name has no shorthand there)
    ("load", "image-archive"): [Opt("name"), Opt("nodes", repeated=True)],
}


def run_kind(state: State, argv: list[str]) -> int:
    path: list[str] = []
    rest = list(argv)
    while rest and not rest[0].startswith("-") and tuple(path) not in KIND_COMMANDS:
        path.append(rest.pop(0))
        known = [c for c in KIND_COMMANDS if c[: len(path)] == tuple(path)]
        if not known:
            parent = " ".join(["kind", *path[:-1]])
            raise Failure(f'ERROR: unknown command "{path[-1]}" for "{parent}"')
    command = tuple(path)
    if command not in KIND_COMMANDS:
        if rest:  # a flag before the command is complete
            parse_flags(rest, [], "ERROR: ")
        subcommands = sorted({c[len(path)] for c in KIND_COMMANDS if c[: len(path)] == command})
        raise Failure(
            f"ERROR: fake kind: `{' '.join(['kind', *path])}` needs one of: {', '.join(subcommands)}"
        )
    opts, args = parse_flags(rest, KIND_COMMANDS[command], "ERROR: ")
    name = opts.get("name") or os.environ.get("KIND_CLUSTER_NAME") or "kind"
    if command == ("load", "docker-image"):
        if not args:
            raise Failure("ERROR: a list of image names is required")
        return kind_load(state, name, args, opts.get("nodes") or [])
    if command == ("load", "image-archive"):
        if not args:
            raise Failure("ERROR: name of image archive is required")
        return kind_load_archive(state, name, args[0], opts.get("nodes") or [])
    if command == ("export", "logs") and len(args) > 1:
        raise Failure(f"ERROR: accepts at most 1 arg(s), received {len(args)}")
    if command != ("export", "logs") and args:
        raise Failure(f'ERROR: unknown command "{args[0]}" for "kind {" ".join(command)}"')
    if command == ("version",):
        out(KIND_DISPLAY_VERSION)
        return 0
    with state.lock():
        if command == ("get", "clusters"):
            names = [c["name"] for c in state.clusters()]
            if not names:
                err("No kind clusters found.")  # kind: pkg/cmd/kind/get/clusters/clusters.go
            for cluster_name in names:
                out(cluster_name)
            return 0
        if command == ("get", "nodes"):
            cluster = state.cluster(name)
            if cluster is None:
                err(f'No kind nodes found for cluster "{name}".')  # kind: pkg/cmd/kind/get/nodes
            else:
                out(cluster["node"])
            return 0
        if command == ("get", "kubeconfig"):
            # kind: pkg/cmd/kind/get/kubeconfig (Fprintln of the YAML, hence the blank line)
            out(yaml.safe_dump(kubeconfig_of(require_kind_cluster(state, name)), sort_keys=False))
            return 0
        if command == ("create", "cluster"):
            return kind_create(state, name, opts)
        if command == ("delete", "cluster"):
            return kind_delete(state, name, opts.get("kubeconfig"))
        if command == ("export", "kubeconfig"):
            cluster = require_kind_cluster(state, name)
            path = opts.get("kubeconfig") or refuse_default_kubeconfig()
            merge_kubeconfig(Path(path), cluster)
            err(f'Set kubectl context to "kind-{name}"')
            return 0
        return kind_export_logs(state, name, args[0] if args else tempfile.mkdtemp())


def require_kind_cluster(state: State, name: str) -> dict:
    cluster = state.cluster(name)
    if cluster is None or not cluster["api"]:
        # kind: pkg/cluster/internal/kubeconfig/internal/kubeconfig (get)
        raise Failure(
            f"ERROR: could not locate any control plane nodes for cluster named '{name}'. "
            "Use the --name option to select a different cluster"
        )
    return cluster


def kind_delete(state: State, name: str, kubeconfig: str | None) -> int:
    # kind: pkg/cmd/kind/delete/cluster/deletecluster.go; an unknown cluster is no error.
    err(f'Deleting cluster "{name}" ...')
    cluster = state.cluster(name)
    if cluster is not None:
        remove_node(state, cluster)
        err(f'Deleted nodes: ["{cluster["node"]}"]')
    if kubeconfig and Path(kubeconfig).exists():
        config = yaml.safe_load(Path(kubeconfig).read_text()) or {}
        entry = f"kind-{name}"
        for key in ("clusters", "contexts", "users"):
            config[key] = [e for e in config.get(key) or [] if e.get("name") != entry]
        if config.get("current-context") == entry:
            config["current-context"] = ""
        Path(kubeconfig).write_text(yaml.safe_dump(config, sort_keys=False))
    return 0


def kind_export_logs(state: State, name: str, directory: str) -> int:
    # kind: pkg/cmd/kind/export/logs/logs.go: the message on stderr, the directory on stdout.
    cluster = state.cluster(name)
    if cluster is None:
        raise Failure(f'ERROR: unknown cluster "{name}"')
    err(f'Exporting logs for cluster "{name}" to:')
    out(directory)
    root = Path(directory)
    node_logs = root / cluster["node"]
    node_logs.mkdir(parents=True, exist_ok=True)
    (root / "kind-version.txt").write_text(KIND_DISPLAY_VERSION + "\n")
    (root / "docker-info.txt").write_text(docker("info").stdout)
    (node_logs / "inspect.json").write_text(docker("inspect", cluster["node"]).stdout)
    (node_logs / "kubernetes-version.txt").write_text("v1.32.2\n")
    (node_logs / "kubelet.log").write_text(f"fake kubelet of {cluster['node']}: started\n")
    (node_logs / "containerd.log").write_text("fake containerd: serving\n")
    images = read_json(state.cluster_dir(name) / "node" / "images.json", {})
    (node_logs / "images.log").write_text("".join(f"{i} {' '.join(r['refs'])}\n" for i, r in images.items()))
    scenario = state.scenario()
    for pod in all_pods(state.api(name), cluster, scenario, time.time()):
        meta = pod["metadata"]
        for status in pod["status"].get("initContainerStatuses", []) + pod["status"].get(
            "containerStatuses", []
        ):
            log = (
                node_logs
                / "pods"
                / f"{meta['namespace']}_{meta['name']}_{meta['uid']}"
                / status["name"]
                / "0.log"
            )
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(log_text(scenario, status["name"], previous=False))
    return 0
