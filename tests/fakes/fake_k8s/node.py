"""The fake kind node: a container run with the ``docker`` CLI on kind's Docker network, its
containerd config (kind's containerdConfigPatches applied), and the images its fake ``crictl``
sees."""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

from .formats import normalized_image
from .output import Failure
from .state import State, write_json


def docker(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["docker", *args], input=stdin, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise Failure("ERROR: fake kind needs the docker CLI, and it is not on PATH") from None


# The node's /usr/local/bin/crictl. crictl: cmd/crictl/image.go (inspecti prints
# {"status": <Image>, "info": {...}}; a missing image is `no such image %q present`), and
# cmd/crictl/main.go (errors go through logrus.Fatal: on a non-terminal, as below; exit 1).
CRICTL_SCRIPT = r"""#!/bin/sh
# Fake crictl written by tests/fakes/fake_k8s/node.py: answers `crictl inspecti [-o json] IMAGE`
# from /fake-kind/images, which the fake `kind load docker-image` writes; refuses the rest.
fatal() {
    printf 'time="%s" level=fatal msg="%s"\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$1" >&2
    exit 1
}
[ "$1" = inspecti ] || fatal "fake crictl supports only: crictl inspecti [-o json] IMAGE (got: $*)"
shift
case "$1" in
    -o|--output) [ "$2" = json ] || fatal "fake crictl supports only -o json (got: $2)"; shift 2 ;;
    --output=json) shift ;;
    -*) fatal "fake crictl: unsupported flag: $1" ;;
esac
[ $# -eq 1 ] || fatal "fake crictl supports exactly one IMAGE (got: $*)"
index=/fake-kind/images/index.tsv
if [ -f "$index" ]; then
    while IFS='	' read -r ref file; do
        if [ "$ref" = "$1" ]; then
            cat "/fake-kind/images/$file"
            exit 0
        fi
    done < "$index"
fi
fatal "no such image \\\"$1\\\" present"
"""


# kind: pkg/cluster/internal/providers/docker/provider.go (Provision: after "Ensuring node image",
# KIND_EXPERIMENTAL_DOCKER_NETWORK overrides the network, with two warnings; then ensureNetwork;
# the nodes run with `--net NAME`) and network.go (fixedNetworkName "kind": a user-defined bridge,
# since the default bridge lacks Docker's embedded DNS; created when missing, "already exists"
# from a concurrent create is fine; `kind delete cluster` never removes it). Real kind also gives
# the network an IPv6 ULA subnet and the default bridge's MTU; the fake's is a plain bridge.
KIND_NETWORK = "kind"


def kind_network() -> str:
    return os.environ.get("KIND_EXPERIMENTAL_DOCKER_NETWORK") or KIND_NETWORK


def ensure_network(name: str) -> None:
    listed = docker("network", "ls", "--filter", f"name={name}", "--format", "{{.Name}}")
    if name in listed.stdout.split():
        return
    argv = [
        "network",
        "create",
        "-d=bridge",
        "-o",
        "com.docker.network.bridge.enable_ip_masquerade=true",
        name,
    ]
    created = docker(*argv)
    if created.returncode != 0 and "already exists" not in created.stderr:
        raise Failure(
            f'ERROR: failed to create cluster: failed to ensure docker network: command "docker {shlex.join(argv)}" '
            f"failed with error: exit status {created.returncode}\nCommand Output: {created.stderr.strip()}"
        )


# The node's containerd config. kind: images/base/files/etc/containerd/config.toml (a subset of
# it: the version-2 format and the CRI plugin's tables), and pkg/cluster/internal/create/actions/
# config/config.go with pkg/internal/patch/toml.go: in "Writing configuration", each of
# containerdConfigPatches is parsed as TOML and applied as a JSON merge patch (RFC 7386), a patch
# whose `version` differs from the config's is skipped, and the result is written back; errors
# are "failed to patch contianerd config: …" (sic, kind's spelling; the parser's message after
# it is Python tomllib's, not go-toml's).
CONTAINERD_CONFIG = "/etc/containerd/config.toml"
CONTAINERD_BASE: dict[str, Any] = {
    "version": 2,
    "plugins": {
        "io.containerd.grpc.v1.cri": {
            "sandbox_image": "registry.k8s.io/pause:3.10",
            "containerd": {
                "default_runtime_name": "runc",
                "discard_unpacked_layers": True,
                "snapshotter": "overlayfs",
                "runtimes": {"runc": {"runtime_type": "io.containerd.runc.v2"}},
            },
        }
    },
}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 (evanphx/json-patch MergePatch) on parsed TOML, which has no nulls."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        merged[key] = merge_patch(merged.get(key), value)
    return merged


def patched_containerd_config(patches: list[str]) -> dict:
    config = copy.deepcopy(CONTAINERD_BASE)
    for text in patches:
        patch = tomllib.loads(text)  # TOMLDecodeError: the caller's patch error
        version = patch.get("version", 0)
        if version not in (0, config["version"]):
            continue
        config = merge_patch(config, patch)
    return config


def toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if value == value and abs(value) != float("inf") else str(value).lower()
    if isinstance(value, str):
        return json.dumps(value)  # JSON's escapes are TOML basic-string escapes
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    return value.isoformat()  # datetime, date, time


def toml_text(table: dict, path: tuple[str, ...] = ()) -> str:
    """A TOML document of ``table`` (scalars first, then one [header] per table, as go-toml writes)."""
    scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in table.items() if isinstance(v, dict)}
    lines = []
    if path and (scalars or not tables):
        lines.append("[" + ".".join(toml_key(p) for p in path) + "]")
    lines += [f"{'  ' * bool(path)}{toml_key(k)} = {toml_value(v)}" for k, v in scalars.items()]
    text = "\n".join(lines) + "\n" if lines else ""
    for key, sub in tables.items():
        text += ("\n" if text else "") + toml_text(sub, (*path, key))
    return text


def write_containerd_config(node: str, patches: list[str]) -> str | None:
    """Write the node's /etc/containerd/config.toml; kind's error text when that fails."""
    try:
        config = patched_containerd_config(patches)
    except tomllib.TOMLDecodeError as exc:
        return f"failed to patch contianerd config: {exc}"
    argv = ["exec", "-i", node, "sh", "-c", f"mkdir -p /etc/containerd && cat > {CONTAINERD_CONFIG}"]
    written = docker(*argv, stdin=toml_text(config))
    if written.returncode != 0:
        return (
            f'failed to write patched containerd config: command "docker {shlex.join(argv)}" failed with '
            f"error: exit status {written.returncode}\nCommand Output: {written.stderr.strip()}"
        )
    return None


def remove_node(state: State, cluster: dict) -> None:
    docker("rm", "-f", cluster["node"])
    shutil.rmtree(state.cluster_dir(cluster["name"]), ignore_errors=True)


def write_node_images(node_dir: Path, loaded: dict) -> None:
    """What the node's crictl reads: one crictl-inspecti JSON per image and an index of names."""
    images = node_dir / "images"
    shutil.rmtree(images, ignore_errors=True)
    images.mkdir()
    index = []
    for image_id, record in loaded.items():
        if not record["refs"]:
            continue
        file = image_id.removeprefix("sha256:") + ".json"
        status = {
            "status": {
                "id": image_id,
                "repoTags": sorted({normalized_image(r) for r in record["refs"]}),
                "repoDigests": [],
                "size": str(record["size"]),
                "uid": None,
                "username": "",
                "spec": None,
                "pinned": False,
            },
            "info": {},
        }
        (images / file).write_text(json.dumps(status, indent=2) + "\n")
        names = {
            *record["refs"],
            *map(normalized_image, record["refs"]),
            image_id,
            image_id.removeprefix("sha256:"),
        }
        index.extend(f"{n}\t{file}\n" for n in sorted(names))
    (images / "index.tsv").write_text("".join(index))
    write_json(node_dir / "images.json", loaded)
