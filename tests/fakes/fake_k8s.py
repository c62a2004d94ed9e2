"""Fake ``kind`` and ``kubectl`` for stagegate's tests; see README.md beside this file.

``bin/kind`` and ``bin/kubectl`` call :func:`main`. The fakes speak the argv and the output
formats of kind v0.27 and kubectl v1.32, refuse anything else the way those CLIs refuse
(exit 1), keep their state under ``$FAKE_K8S_STATE`` and log every call to ``calls.jsonl``.
Each format names its source in a comment: "kind:" is kubernetes-sigs/kind, "kubectl:" is
kubernetes/kubectl, "k8s:" is kubernetes/kubernetes, "crictl:" is kubernetes-sigs/cri-tools.
"""

from __future__ import annotations

import base64
import calendar
import copy
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

BIN_DIR = Path(__file__).resolve().parent / "bin"
KIND_DISPLAY_VERSION = "kind v0.27.0 go1.23.6 linux/amd64"
# kind v0.27.0's default node image, as its create status line shows it.
KIND_NODE_IMAGE = "kindest/node:v1.32.2"
DEFAULT_FAKE_NODE_IMAGE = "stagegate-test/busybox:1"
SYSTEM_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system", "local-path-storage")
SCENARIO_KEYS = {"create_cluster_error", "apply_error", "load_failures", "port_forward", "logs", "workloads"}
SCENARIO_KEYS |= {"pullable", "replacements", "crds"}
SCENARIO_KEYS |= {"forbidden", "registries"}  # the existing target's (see forbidden_error, registry_serves)
STATE_KEYS = {"at", "phase", "scheduled", "message", "waiting", "ready", "restarts"}
STATE_KEYS |= {"last_exit_code", "last_reason", "container", "init"}
INIT_KEYS = {"waiting", "message", "restarts", "last_exit_code", "last_reason"}
PHASES = ("Pending", "Running", "Succeeded", "Failed")
WAITING_REASONS = (
    "ContainerCreating",
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "CrashLoopBackOff",
)
DEFAULT_TIMELINE = [{"at": 0, "phase": "Running", "ready": True}]
# Without a scripted timeline, a pod with an image neither loaded nor pullable: ErrImagePull for
# this long after the apply, then ImagePullBackOff.
PULL_FAILURE_SECONDS = 1.0


class Failure(Exception):
    """The command fails: ``text`` goes to stderr and the exit code is 1, as with kind and kubectl."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def out(text: str = "") -> None:
    print(text, flush=True)


def err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- entry point, state, call log --------------------------------------------------------------


def main(tool: str, argv: list[str]) -> int:
    state_dir = os.environ.get("FAKE_K8S_STATE")
    if not state_dir:
        err(
            f"fake {tool}: FAKE_K8S_STATE is not set (a directory for the fakes' state; see tests/fakes/README.md)"
        )
        return 1
    state = State(Path(state_dir))
    call = {"tool": tool, "argv": argv, "time": time.time()}
    try:
        code = (run_kind if tool == "kind" else run_kubectl)(state, argv)
    except Failure as failure:
        err(failure.text)
        code = 1
    except KeyboardInterrupt:
        code = 130
    served = {"served": list(SERVED.values())} if SERVED else {}
    state.log_call({**call, "exit_code": code, **served})
    return code


# The pods this call made, with the timeline entry each one was in (its ``at``, seconds after its
# workload's apply or its replacement): calls.jsonl keeps them, so that a test can tell which poll
# of the program under test first saw a scripted state, without comparing clocks.
SERVED: dict[str, dict] = {}


def served(kind: str, name: str, pod: str, at: float) -> None:
    SERVED[pod] = {"workload": f"{kind}/{name}", "pod": pod, "at": round(at, 6)}


def read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    tmp.replace(path)


class State:
    """``$FAKE_K8S_STATE``: scenario.json (the tests'), calls.jsonl, clusters/<name>/."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()  # bind-mounted into the node container: must be absolute
        self.root.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def lock(self) -> Iterator[None]:
        with open(self.root / ".lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def log_call(self, record: dict) -> None:
        line = (json.dumps(record) + "\n").encode()
        fd = os.open(self.root / "calls.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def scenario(self) -> dict:
        path = self.root / "scenario.json"
        try:
            scenario = read_json(path, {})
        except json.JSONDecodeError as exc:
            raise Failure(f"fake: {path}: {exc}") from None
        unknown = set(scenario) - SCENARIO_KEYS
        if unknown:
            raise Failure(f"fake: {path}: unknown keys {sorted(unknown)} (known: {sorted(SCENARIO_KEYS)})")
        for section in ("workloads", "replacements"):
            for key, timeline in (scenario.get(section) or {}).items():
                for entry in timeline:
                    check_state(f"{path}: {section}[{key!r}]", entry)
        pullable = scenario.get("pullable", [])
        if not isinstance(pullable, list) or not all(
            isinstance(ref, str) and re.fullmatch(r"[^\s@]+(@sha256:[0-9a-f]{64})?", ref) for ref in pullable
        ):
            raise Failure(
                f"fake: {path}: pullable must be a list of image references or repositories "
                f'(e.g. ["busybox:1.36", "ghcr.io/org/tool"]), not {pullable!r}'
            )
        return scenario

    def cluster_dir(self, name: str) -> Path:
        return self.root / "clusters" / name

    def cluster(self, name: str) -> dict | None:
        return self.with_node_images(read_json(self.cluster_dir(name) / "cluster.json", None))

    def clusters(self) -> list[dict]:
        base = self.root / "clusters"
        found = [read_json(p / "cluster.json", None) for p in sorted(base.iterdir())] if base.is_dir() else []
        return [self.with_node_images(c) for c in found if c]

    def with_node_images(self, cluster: dict | None) -> dict | None:
        """The cluster, plus (not stored) the containerd names of the images `kind load` put on its node."""
        if cluster:
            loaded = read_json(self.cluster_dir(cluster["name"]) / "node" / "images.json", {})
            cluster["node_images"] = sorted({normalized_image(r) for i in loaded.values() for r in i["refs"]})
        return cluster

    def save_cluster(self, cluster: dict) -> None:
        stored = {k: v for k, v in cluster.items() if k != "node_images"}
        write_json(self.cluster_dir(cluster["name"]) / "cluster.json", stored)

    def api(self, name: str) -> dict:
        return read_json(self.cluster_dir(name) / "api.json", {"objects": {}, "events": [], "rv": 1000})

    def save_api(self, name: str, api: dict) -> None:
        write_json(self.cluster_dir(name) / "api.json", api)


def check_state(where: str, entry: dict) -> None:
    """A timeline entry of the scenario, validated so that a typo fails loudly."""
    unknown = set(entry) - STATE_KEYS
    if unknown:
        raise Failure(f"fake: {where}: unknown state keys {sorted(unknown)} (known: {sorted(STATE_KEYS)})")
    if entry.get("phase", "Running") not in PHASES:
        raise Failure(f"fake: {where}: phase {entry['phase']!r} is not one of {PHASES}")
    for fields in (entry, entry.get("init") or {}):
        if fields.get("waiting") not in (None, *WAITING_REASONS):
            raise Failure(f"fake: {where}: waiting {fields['waiting']!r} is not one of {WAITING_REASONS}")
    if set(entry.get("init") or {}) - INIT_KEYS:
        raise Failure(f"fake: {where}: init takes only {sorted(INIT_KEYS)}")


# -- small helpers -----------------------------------------------------------------------------


def digest(*parts: object) -> str:
    return hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()


def uid_of(*parts: object) -> str:
    return str(uuid.UUID(digest(*parts)[:32]))


# k8s: apimachinery/pkg/util/rand SafeEncodeString's alphabet (pod-template-hash, name suffixes).
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def safe_name(length: int, *parts: object) -> str:
    number = int(digest(*parts), 16)
    chars = []
    for _ in range(length):
        number, index = divmod(number, len(SAFE_ALPHABET))
        chars.append(SAFE_ALPHABET[index])
    return "".join(chars)


def rfc3339(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def go_duration(seconds: float) -> str:
    """Go's time.Duration.String() for whole seconds: 40s, 1m20s, 5m0s, 1h0m0s."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60}s"
    return f"{s // 3600}h{s % 3600 // 60}m{s % 60}s"


def parse_go_duration(text: str) -> float | None:
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    if text == "0":
        return 0.0
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * units[u] for n, u in parts)


def human_duration(seconds: float) -> str:
    """k8s: apimachinery/pkg/util/duration.HumanDuration (the AGE of kubectl)."""
    s = max(int(seconds), 0)
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    return f"{hours // 24}d"


def normalized_image(ref: str) -> str:
    """The reference as containerd names it: busybox:1 -> docker.io/library/busybox:1."""
    name, sep, rest = ref.partition("@")
    tag = ""
    if ":" in name.rsplit("/", 1)[-1]:
        name, tag = name.rsplit(":", 1)
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    if sep:
        return f"{name}@{rest}"
    return f"{name}:{tag or 'latest'}"


def docker(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["docker", *args], input=stdin, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise Failure("ERROR: fake kind needs the docker CLI, and it is not on PATH") from None


# -- argv parsing (spf13/pflag, which both CLIs use) -------------------------------------------


@dataclass(frozen=True)
class Opt:
    long: str
    short: str = ""
    takes_value: bool = True
    repeated: bool = False  # pflag's StringSlice: repeatable, comma-separated
    modelled: bool = True  # False: a real flag the fake refuses by name ("error: fake kubectl: ...")
    bare: str | None = None  # pflag's NoOptDefVal: the value of "--x" alone (no next-arg value)


def parse_flags(args: list[str], opts: list[Opt], prefix: str) -> tuple[dict[str, Any], list[str]]:
    """pflag's rules: --name value, --name=value, -n value, -nvalue, -n=value, bools (--x[=true])."""
    by_long = {o.long: o for o in opts}
    by_short = {o.short: o for o in opts if o.short}
    values: dict[str, Any] = {}
    positionals: list[str] = []

    def store(opt: Opt, value: Any) -> None:
        if opt.repeated:
            values.setdefault(opt.long, []).extend(value.split(","))
        else:
            values[opt.long] = value

    def boolean(opt: Opt, text: str) -> bool:
        if text.lower() in ("true", "1", "t"):
            return True
        if text.lower() in ("false", "0", "f"):
            return False
        raise Failure(
            f'{prefix}invalid argument "{text}" for "--{opt.long}" flag: '
            f'strconv.ParseBool: parsing "{text}": invalid syntax'
        )

    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            positionals.extend(args[i:])
            break
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            opt = by_long.get(name)
            if opt is None:
                raise Failure(f"{prefix}unknown flag: --{name}")
            if not opt.takes_value:
                store(opt, boolean(opt, value) if eq else True)
            elif opt.bare is not None and not eq:
                store(opt, opt.bare)
            elif eq:
                store(opt, value)
            elif i < len(args):
                store(opt, args[i])
                i += 1
            else:
                raise Failure(f"{prefix}flag needs an argument: --{name}")
        elif arg.startswith("-") and len(arg) > 1:
            chars = arg[1:]
            while chars:
                char, chars = chars[0], chars[1:]
                opt = by_short.get(char)
                if opt is None:
                    raise Failure(f"{prefix}unknown shorthand flag: '{char}' in {arg}")
                if not opt.takes_value:
                    store(opt, True)
                    continue
                if chars:
                    store(opt, chars.removeprefix("="))
                elif i < len(args):
                    store(opt, args[i])
                    i += 1
                else:
                    raise Failure(f"{prefix}flag needs an argument: '{char}' in {arg}")
                break
        else:
            positionals.append(arg)
    return values, positionals


# -- kind ----------------------------------------------------------------------------------------

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

# kind: pkg/internal/cli/status.go, when stderr is not a terminal: " • %s  ..." then " ✓ %s".
STEP_NODES = "Preparing nodes 📦 "
STEP_CONFIG = "Writing configuration 📜"
STEP_CONTROL_PLANE = "Starting control-plane 🕹️"
STEP_CNI = "Installing CNI 🔌"
STEP_STORAGE = "Installing StorageClass 💾"

# The node's /usr/local/bin/crictl. crictl: cmd/crictl/image.go (inspecti prints
# {"status": <Image>, "info": {...}}; a missing image is `no such image %q present`), and
# cmd/crictl/main.go (errors go through logrus.Fatal: on a non-terminal, as below; exit 1).
CRICTL_SCRIPT = r"""#!/bin/sh
# Fake crictl written by tests/fakes/fake_k8s.py: answers `crictl inspecti [-o json] IMAGE`
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


def refuse_default_kubeconfig() -> str:
    raise Failure(
        "ERROR: fake kind: pass --kubeconfig PATH (the real kind would write $KUBECONFIG or "
        "~/.kube/config, which the fakes never touch)"
    )


def require_kind_cluster(state: State, name: str) -> dict:
    cluster = state.cluster(name)
    if cluster is None or not cluster["api"]:
        # kind: pkg/cluster/internal/kubeconfig/internal/kubeconfig (get)
        raise Failure(
            f"ERROR: could not locate any control plane nodes for cluster named '{name}'. "
            "Use the --name option to select a different cluster"
        )
    return cluster


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


# -- the node's network and containerd ------------------------------------------------------------
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


def kubeconfig_of(cluster: dict) -> dict:
    """kind's kubeconfig (what `kind get kubeconfig` prints); the credentials are not real PEM."""
    entry = f"kind-{cluster['name']}"
    return {
        "apiVersion": "v1",
        "clusters": [
            {
                "cluster": {
                    "certificate-authority-data": cluster["ca"],
                    "server": f"https://127.0.0.1:{cluster['port']}",
                },
                "name": entry,
            }
        ],
        "contexts": [{"context": {"cluster": entry, "user": entry}, "name": entry}],
        "current-context": entry,
        "kind": "Config",
        "preferences": {},
        "users": [
            {
                "name": entry,
                "user": {"client-certificate-data": cluster["ca"], "client-key-data": cluster["ca"]},
            }
        ],
    }


def merge_kubeconfig(path: Path, cluster: dict) -> None:
    """Like kind: replace the kind-<name> entries of an existing file, set current-context."""
    config = (yaml.safe_load(path.read_text()) if path.exists() else None) or {}
    mine = kubeconfig_of(cluster)
    for key in ("clusters", "contexts", "users"):
        entry = mine[key][0]
        config[key] = [e for e in config.get(key) or [] if e.get("name") != entry["name"]] + [entry]
    merged = {**mine, **config, "current-context": mine["current-context"]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({k: merged[k] for k in sorted(merged)}, sort_keys=False))


def kind_load(state: State, name: str, images: list[str], nodes: list[str]) -> int:
    # kind: pkg/cmd/kind/load/docker-image/docker-image.go and pkg/cluster/nodeutils (the import)
    found = {}
    for image in images:
        inspected = docker("image", "inspect", "--format", "{{.Id}}|{{.Size}}", image)
        if inspected.returncode != 0:
            raise Failure(f'ERROR: image: "{image}" not present locally')
        image_id, size = inspected.stdout.strip().split("|")
        found[image] = (image_id, size)
    scenario = state.scenario()
    with state.lock():
        cluster = state.cluster(name)
        if cluster is None:
            raise Failure(f'ERROR: no nodes found for cluster "{name}"')
        for node in nodes:
            if node != cluster["node"]:
                raise Failure(f'ERROR: unknown node: "{node}"')
        node_dir = state.cluster_dir(name) / "node"
        loaded = read_json(node_dir / "images.json", {})
        to_load = []
        for image, (image_id, _) in found.items():
            if image in (loaded.get(image_id) or {}).get("refs", []):
                err(f'Image: "{image}" with ID "{image_id}" found to be already present on all nodes.')
            else:
                err(
                    f'Image: "{image}" with ID "{image_id}" not yet present on node "{cluster["node"]}", loading...'
                )
                to_load.append(image)
        if not to_load:
            return 0
        used = read_json(state.root / "load_failures_used.json", {})
        failing = [
            i for i in to_load if used.get(i, 0) < int((scenario.get("load_failures") or {}).get(i, 0))
        ]
        if failing:
            for image in failing:
                used[image] = used.get(image, 0) + 1
            write_json(state.root / "load_failures_used.json", used)
            raise Failure(
                f'ERROR: failed to load image: command "docker exec --privileged -i {cluster["node"]} ctr '
                '--namespace=k8s.io images import --all-platforms --digests --snapshotter=overlayfs -" '
                "failed with error: exit status 1\nCommand Output: ctr: content digest "
                f"{found[failing[0]][0]}: not found"
            )
        for image in to_load:
            image_id, size = found[image]
            for record in loaded.values():  # a tag moves to the image loaded last
                record["refs"] = [r for r in record["refs"] if r != image]
            loaded.setdefault(image_id, {"refs": [], "size": size})["refs"].append(image)
        write_node_images(node_dir, loaded)
    return 0


def archive_images(path: Path) -> dict[str, tuple[str, str]]:
    """``{ref: (image_id, size)}`` of a ``docker save`` archive, from its manifest.json (the
    config blob's digest is the image ID: ``<hex>.json`` in the engine's older layout,
    ``blobs/sha256/<hex>`` in the OCI layout of Docker 25 and later)."""
    import tarfile

    try:
        with tarfile.open(path) as archive:
            member = archive.extractfile("manifest.json")
            entries = json.loads(member.read()) if member else None
    except (tarfile.TarError, KeyError, ValueError, OSError) as exc:
        raise Failure(f"ERROR: failed to load image: {path} is not an image archive: {exc}") from None
    size = str(path.stat().st_size)
    found = {}
    for entry in entries or []:
        image_id = "sha256:" + Path(entry["Config"]).name.removesuffix(".json")
        for ref in entry.get("RepoTags") or []:
            found[ref] = (image_id, size)
    return found


def kind_load_archive(state: State, name: str, archive: str, nodes: list[str]) -> int:
    # kind: pkg/cmd/kind/load/image-archive/image-archive.go — stat the file, list the nodes,
    # then import the archive on every selected node (no check of what the node already has)
    path = Path(archive)
    if not path.exists():
        raise Failure(f"ERROR: stat {archive}: no such file or directory")
    found = archive_images(path)
    with state.lock():
        cluster = state.cluster(name)
        if cluster is None:
            raise Failure(f'ERROR: no nodes found for cluster "{name}"')
        for node in nodes:
            if node != cluster["node"]:
                raise Failure(f"ERROR: unknown node: {node}")
        node_dir = state.cluster_dir(name) / "node"
        loaded = read_json(node_dir / "images.json", {})
        for image, (image_id, size) in found.items():
            for record in loaded.values():  # a tag moves to the image loaded last
                record["refs"] = [r for r in record["refs"] if r != image]
            loaded.setdefault(image_id, {"refs": [], "size": size})["refs"].append(image)
        write_node_images(node_dir, loaded)
    return 0


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


# -- the API objects -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    kind: str
    api_version: str
    plural: str
    namespaced: bool = True

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def type_name(self) -> str:  # kubectl's "deployment.apps/api-server created"
        return f"{self.kind.lower()}.{self.group}" if self.group else self.kind.lower()

    @property
    def resource(self) -> str:  # the server's "deployments.apps \"x\" not found"
        return f"{self.plural}.{self.group}" if self.group else self.plural


KINDS = {
    k.kind: k
    for k in (
        Kind("Namespace", "v1", "namespaces", namespaced=False),
        Kind("Pod", "v1", "pods"),
        Kind("Service", "v1", "services"),
        Kind("ConfigMap", "v1", "configmaps"),
        Kind("Secret", "v1", "secrets"),
        Kind("ServiceAccount", "v1", "serviceaccounts"),
        Kind("PersistentVolumeClaim", "v1", "persistentvolumeclaims"),
        Kind("Deployment", "apps/v1", "deployments"),
        Kind("StatefulSet", "apps/v1", "statefulsets"),
        Kind("DaemonSet", "apps/v1", "daemonsets"),
        Kind("ReplicaSet", "apps/v1", "replicasets"),
        Kind("Job", "batch/v1", "jobs"),
        Kind("CronJob", "batch/v1", "cronjobs"),
        Kind("Ingress", "networking.k8s.io/v1", "ingresses"),
        Kind("NetworkPolicy", "networking.k8s.io/v1", "networkpolicies"),
        Kind("Role", "rbac.authorization.k8s.io/v1", "roles"),
        Kind("RoleBinding", "rbac.authorization.k8s.io/v1", "rolebindings"),
        Kind("ClusterRole", "rbac.authorization.k8s.io/v1", "clusterroles", namespaced=False),
        Kind("ClusterRoleBinding", "rbac.authorization.k8s.io/v1", "clusterrolebindings", namespaced=False),
        Kind("PodDisruptionBudget", "policy/v1", "poddisruptionbudgets"),
        Kind("HorizontalPodAutoscaler", "autoscaling/v2", "horizontalpodautoscalers"),
        Kind(
            "CustomResourceDefinition",
            "apiextensions.k8s.io/v1",
            "customresourcedefinitions",
            namespaced=False,
        ),
    )
}
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "Pod")
# kubectl get TYPE, as the fake serves it: the names and short names kubectl accepts.
GET_TYPES = {
    **dict.fromkeys(("pods", "pod", "po"), "Pod"),
    **dict.fromkeys(("deployments", "deployment", "deploy", "deployments.apps"), "Deployment"),
    **dict.fromkeys(("statefulsets", "statefulset", "sts", "statefulsets.apps"), "StatefulSet"),
    **dict.fromkeys(("daemonsets", "daemonset", "ds", "daemonsets.apps"), "DaemonSet"),
    **dict.fromkeys(("replicasets", "replicaset", "rs", "replicasets.apps"), "ReplicaSet"),
    **dict.fromkeys(("services", "service", "svc"), "Service"),
    **dict.fromkeys(("jobs", "job", "jobs.batch"), "Job"),
    **dict.fromkeys(("events", "event", "ev"), "Event"),
    **dict.fromkeys(("namespaces", "namespace", "ns"), "Namespace"),
    **dict.fromkeys(("configmaps", "configmap", "cm"), "ConfigMap"),
    **dict.fromkeys(
        (
            "customresourcedefinitions",
            "customresourcedefinition",
            "crd",
            "crds",
            "customresourcedefinitions.apiextensions.k8s.io",
        ),
        "CustomResourceDefinition",
    ),
}


# -- CustomResourceDefinitions -------------------------------------------------------------------
# apiextensions-apiserver: pkg/apis/apiextensions/v1 (types: spec.group, names, scope, versions;
# status.conditions, acceptedNames, storedVersions), pkg/controller/status/naming_controller.go
# (NamesAccepted True "NoConflicts" / "no conflicts found"; Established False "Installing" / "the
# initial names have been accepted"), pkg/controller/establish/establishing_controller.go
# (Established True "InitialNamesAccepted" / "the initial names have been accepted").


def crd_established_at(record: dict, scenario: dict) -> float | None:
    """When the CRD becomes Established: at once, after the scenario's delay, or never (null)."""
    entry = (scenario.get("crds") or {}).get(record["object"]["metadata"]["name"], {})
    if not isinstance(entry, dict) or set(entry) - {"established_after"}:
        raise Failure(
            f'fake: scenario.json: crds entries are {{"established_after": seconds | null}}, not {entry!r}'
        )
    delay = entry.get("established_after", 0)
    if delay is None:
        return None
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
        raise Failure(f"fake: scenario.json: established_after must be seconds >= 0 or null, not {delay!r}")
    return record["applied_at"] + delay


def crd_with_status(record: dict, scenario: dict, now: float) -> dict:
    obj = copy.deepcopy(record["object"])
    spec = obj.get("spec") or {}
    established_at = crd_established_at(record, scenario)
    established = established_at is not None and now >= established_at

    def crd_condition(kind: str, ok: bool, at: float, reason: str, message: str) -> dict:
        return {
            "lastTransitionTime": rfc3339(at),
            "message": message,
            "reason": reason,
            "status": "True" if ok else "False",
            "type": kind,
        }

    accepted = crd_condition("NamesAccepted", True, record["applied_at"], "NoConflicts", "no conflicts found")
    state = (
        crd_condition(
            "Established",
            True,
            established_at,
            "InitialNamesAccepted",
            "the initial names have been accepted",
        )
        if established_at is not None and established
        else crd_condition(
            "Established", False, record["applied_at"], "Installing", "the initial names have been accepted"
        )
    )
    obj["status"] = {
        "acceptedNames": spec.get("names") or {},
        "conditions": [accepted, state],
        "storedVersions": [v["name"] for v in spec.get("versions") or [] if v.get("storage")],
    }
    return obj


def custom_kinds(api: dict, scenario: dict, now: float | None) -> dict[tuple[str, str], Kind]:
    """(apiVersion, kind) -> Kind of every applied CRD's served versions; with ``now``, only the
    CRDs Established by then (the API server serves a CRD's resource once it is Established)."""
    found = {}
    for record in records(api, "CustomResourceDefinition", None):
        if now is not None:
            at = crd_established_at(record, scenario)
            if at is None or now < at:
                continue
        spec = record["object"].get("spec") or {}
        names = spec.get("names") or {}
        for version in spec.get("versions") or []:
            if version.get("served", True) and names.get("kind") and names.get("plural"):
                api_version = f"{spec.get('group')}/{version.get('name')}"
                found[(api_version, names["kind"])] = Kind(
                    names["kind"], api_version, names["plural"], namespaced=spec.get("scope") != "Cluster"
                )
    return found


def custom_get_types(api: dict, scenario: dict, now: float) -> dict[str, Kind]:
    """The names `kubectl get` knows a served custom resource by: plural, singular, short names,
    plural.group, and the kind in lower case."""
    types = {}
    for kind in custom_kinds(api, scenario, now).values():
        record = next(
            r
            for r in records(api, "CustomResourceDefinition", None)
            if (r["object"]["spec"].get("names") or {}).get("kind") == kind.kind
            and r["object"]["spec"].get("group") == kind.group
        )
        names = record["object"]["spec"]["names"]
        for name in (
            names["plural"],
            names.get("singular"),
            kind.kind.lower(),
            f"{names['plural']}.{kind.group}",
            *(names.get("shortNames") or []),
        ):
            if name:
                types[name] = kind
    return types


def object_key(kind: str, namespace: str, name: str) -> str:
    return f"{kind}/{namespace}/{name}"


def namespaces_of(api: dict) -> set[str]:
    return {
        *SYSTEM_NAMESPACES,
        *(
            r["object"]["metadata"]["name"]
            for r in api["objects"].values()
            if r["object"]["kind"] == "Namespace"
        ),
    }


def records(api: dict, kind: str, namespace: str | None) -> list[dict]:
    found = [r for r in api["objects"].values() if r["object"]["kind"] == kind]
    return [r for r in found if namespace is None or r["object"]["metadata"].get("namespace") == namespace]


# -- pods, derived from the workloads and the scenario's timelines ---------------------------------


def image_repository(ref: str) -> str:
    """The repository of a reference, as containerd names it: busybox:1 -> docker.io/library/busybox."""
    full = normalized_image(ref)
    return full.partition("@")[0] if "@" in full else full.rsplit(":", 1)[0]


def image_available(image: str, cluster: dict, scenario: dict) -> bool:
    """On the node (loaded by `kind load`), or served by a registry: the scenario's ``pullable``,
    one of its ``registries``, or a registry container the node's containerd reaches through a
    hosts.toml (:func:`pullable_through_hosts`)."""
    full = normalized_image(image)
    if full in cluster.get("node_images", []):
        return True
    for entry in scenario.get("pullable") or []:
        if "@" not in entry and ":" not in entry.rsplit("/", 1)[-1]:  # a repository: any tag or digest
            if image_repository(entry) == image_repository(image):
                return True
        elif normalized_image(entry) == full:
            return True
    return registry_serves(image, scenario) or pullable_through_hosts(image, cluster)


MANIFEST_ACCEPT = (
    "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"
)


def name_and_reference(rest: str) -> tuple[str, str]:
    """``repo/name:tag`` or ``repo/name@sha256:…`` (after the registry host): the registry API's
    name and reference (``latest`` without either)."""
    if "@" in rest:
        name, _, reference = rest.partition("@")
        return name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name, reference
    if ":" in rest.rsplit("/", 1)[-1]:
        name, _, reference = rest.rpartition(":")
        return name, reference
    return rest, "latest"


def manifest_served(base: str, name: str, reference: str) -> bool:
    """``HEAD <base>/<name>/manifests/<reference>`` (``base`` ends in /v2) answers 200."""
    request = urllib.request.Request(
        f"{base}/{name}/manifests/{reference}", method="HEAD", headers={"Accept": MANIFEST_ACCEPT}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def registry_serves(image: str, scenario: dict) -> bool:
    """An image of one of the scenario's ``registries`` (real registries on 127.0.0.1, e.g.
    ``["127.0.0.1:5000"]``) is pullable when that registry serves its manifest (the registry
    API: ``GET /v2/<name>/manifests/<tag or digest>``), as a node's containerd would pull it."""
    host, _, rest = image.partition("/")
    if host not in (scenario.get("registries") or []) or not rest:
        return False
    return manifest_served(f"http://{host}/v2", *name_and_reference(rest))


# -- pulls through the node's hosts.toml files ----------------------------------------------------
# containerd (v2.0, the kindest/node v1.32 one): with the CRI plugin's `registry.config_path` set
# (docs/hosts.md; kind's local-registry recipe, KEP-1755), a pull of HOST/name looks for
# <config_path>/HOST/hosts.toml (else <config_path>/_default/hosts.toml; core/remotes/docker/
# config/hosts.go) and tries its [host."URL"] entries in order, then its `server`; a host needs the
# `resolve` capability for a tag and `pull` for a digest (both by default; core/remotes/docker/
# resolver.go), and its URL's path is `/v2` unless given (with `override_path`, as given). The
# node resolves a host's name with Docker's embedded DNS, which answers on user-defined networks
# only (not the default `bridge`) with the names and network aliases of the containers attached
# to the same network (moby: libnetwork resolver). The fake asks the registry from the host: the
# container's IP on that network, `HEAD /v2/<name>/manifests/<ref>` (what containerd's resolver
# sends first). Not modelled: https hosts (no TLS to a registry container), and the default server
# (`https://HOST`, contacted when nothing above answers): from the node, localhost is the node.
# Every read of the node is cached for the life of the fake process (one `kubectl get`).
_NODE_CACHE: dict[tuple[str, ...], Any] = {}


def node_file(node: str, path: str) -> str | None:
    """A file of the node (`docker exec NODE cat PATH`), or None when it cannot be read."""
    key = ("file", node, path)
    if key not in _NODE_CACHE:
        try:
            read = docker("exec", node, "cat", path)
        except Failure:  # no docker CLI: nothing can be read
            read = None
        _NODE_CACHE[key] = read.stdout if read is not None and read.returncode == 0 else None
    return _NODE_CACHE[key]


def docker_json(*args: str) -> Any:
    key = ("docker", *args)
    if key not in _NODE_CACHE:
        try:
            result = docker(*args)
            _NODE_CACHE[key] = json.loads(result.stdout) if result.returncode == 0 else None
        except (Failure, ValueError):
            _NODE_CACHE[key] = None
    return _NODE_CACHE[key]


def image_registry_host(image: str) -> str | None:
    """The registry host of an image written with one (``localhost:5001/x``, ``ghcr.io/x``)."""
    first, sep, _ = image.partition("@")[0].partition("/")
    return first if sep and ("." in first or ":" in first or first == "localhost") else None


def node_toml(node: str, path: str) -> dict | None:
    text = node_file(node, path)
    if text is None:
        return None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None  # containerd fails the pull on an unparsable hosts.toml, or does not start


def registry_hosts(node: str, host: str) -> list[tuple[str, dict]]:
    """(URL, its settings) of the hosts.toml the node's containerd reads for ``host``, in order."""
    config = node_toml(node, CONTAINERD_CONFIG) or {}
    cri = ((config.get("plugins") or {}).get("io.containerd.grpc.v1.cri") or {}).get("registry") or {}
    config_path = cri.get("config_path")
    if not isinstance(config_path, str) or not config_path:
        return []
    root = config_path.rstrip("/")
    hosts = node_toml(node, f"{root}/{host}/hosts.toml")
    if hosts is None:
        hosts = node_toml(node, f"{root}/_default/hosts.toml")
    if hosts is None:
        return []
    found = [(url, entry) for url, entry in (hosts.get("host") or {}).items() if isinstance(entry, dict)]
    if isinstance(hosts.get("server"), str):
        found.append((hosts["server"], hosts))
    return found


def node_networks(node: str) -> dict[str, dict]:
    inspected = docker_json("inspect", node)
    return ((inspected or [{}])[0].get("NetworkSettings") or {}).get("Networks") or {}


def address_in_node(node: str, name: str) -> str | None:
    """The IP that ``name`` reaches from the node: a container attached to one of the node's
    user-defined networks under that name or network alias (Docker's embedded DNS), or an IP of
    a container on one of the node's networks; None for anything else (the node's loopback too)."""
    try:
        literal = ipaddress.ip_address(name)
    except ValueError:
        literal = None
    if literal is not None and literal.is_loopback:
        return None
    for network in node_networks(node):
        if network in ("host", "none") or (literal is None and network == "bridge"):
            continue
        attached = ((docker_json("network", "inspect", network) or [{}])[0].get("Containers")) or {}
        if literal is not None:
            if any(c.get("IPv4Address", "").split("/")[0] == name for c in attached.values()):
                return name
            continue
        containers = (docker_json("inspect", *sorted(attached)) or []) if attached else []
        for container in containers:
            endpoint = ((container.get("NetworkSettings") or {}).get("Networks") or {}).get(network) or {}
            names = {container.get("Name", "").lstrip("/"), *(endpoint.get("Aliases") or [])}
            names |= set(endpoint.get("DNSNames") or [])
            if name.lower() in {n.lower() for n in names} and endpoint.get("IPAddress"):
                return endpoint["IPAddress"]
    return None


def pullable_through_hosts(image: str, cluster: dict) -> bool:
    """Whether the node's containerd pulls ``image`` through a hosts.toml (see above)."""
    host = image_registry_host(image)
    node = cluster.get("node")
    if host is None or not node:
        return False
    key = ("pull", node, image)
    if key in _NODE_CACHE:
        return _NODE_CACHE[key]
    name, reference = name_and_reference(image.partition("/")[2])
    needed = "pull" if reference.startswith("sha256:") else "resolve"
    served = False
    for url, entry in registry_hosts(node, host):
        capabilities = entry.get("capabilities", ["pull", "resolve", "push"])
        parsed = urllib.parse.urlsplit(url)
        if needed not in capabilities or parsed.scheme != "http" or not parsed.hostname:
            continue
        address = address_in_node(node, parsed.hostname)
        if address is None:
            continue
        path = parsed.path.rstrip("/")
        if not entry.get("override_path") and not path.endswith("/v2"):
            path += "/v2"
        netloc = f"[{address}]" if ":" in address else address
        if manifest_served(f"http://{netloc}:{parsed.port or 80}{path}", name, reference):
            served = True
            break
    _NODE_CACHE[key] = served
    return served


def current_state(
    scenario: dict, kind: str, name: str, elapsed: float, spec: dict, cluster: dict
) -> tuple[dict, float]:
    """The timeline entry in force ``elapsed`` seconds after the apply, and its ``at``.

    Without a scripted timeline: DEFAULT_TIMELINE, unless an image of the pod ``spec`` is neither
    on the node nor pullable; then the kubelet's pull failure, ErrImagePull then ImagePullBackOff.
    """
    timelines = scenario.get("workloads") or {}
    timeline = timelines.get(f"{kind}/{name}") or timelines.get("*")
    if not timeline:
        containers = spec.get("initContainers", []) + spec.get("containers", [])
        missing = [
            c["name"] for c in containers if not image_available(c.get("image", ""), cluster, scenario)
        ]
        if missing:
            backing_off = elapsed >= PULL_FAILURE_SECONDS
            reason = "ImagePullBackOff" if backing_off else "ErrImagePull"
            state = {"phase": "Pending", "pull_failures": {n: reason for n in missing}}
            return state, PULL_FAILURE_SECONDS if backing_off else 0.0
        timeline = DEFAULT_TIMELINE
    entries = sorted(timeline, key=lambda e: e.get("at", 0))
    chosen = entries[0]
    for entry in entries:
        if entry.get("at", 0) <= elapsed:
            chosen = entry
    return chosen, float(chosen.get("at", 0))


def template_hash(template: dict) -> str:
    return safe_name(10, json.dumps(template, sort_keys=True))


def workload_pods(record: dict, cluster: dict, scenario: dict, now: float) -> list[tuple[dict, list[dict]]]:
    """(pod, its events) for each pod of a workload: names, labels and owners as the controllers make them."""
    obj = record["object"]
    kind, meta, spec = obj["kind"], obj["metadata"], obj.get("spec") or {}
    name, ns = meta["name"], meta["namespace"]
    pod_template_spec = spec if kind == "Pod" else (spec.get("template") or {}).get("spec") or {}
    state, at = current_state(scenario, kind, name, now - record["applied_at"], pod_template_spec, cluster)
    since = record["applied_at"] + at
    if kind == "Pod":
        template = {
            "metadata": {k: v for k, v in meta.items() if k in ("labels", "annotations")},
            "spec": spec,
        }
        served(kind, name, name, at)
        return [
            build_pod(name, "", dict(meta.get("labels") or {}), None, template, state, since, record, cluster)
        ]
    template = spec.get("template") or {}
    labels = dict((template.get("metadata") or {}).get("labels") or {})
    owner = {"apiVersion": obj["apiVersion"], "kind": kind, "name": name, "uid": meta["uid"]}
    count = int(
        spec.get("parallelism", 1) if kind == "Job" else 1 if kind == "DaemonSet" else spec.get("replicas", 1)
    )
    revision = f"{name}-{template_hash(template)}"
    pods = []
    for i in range(count):
        # A pod deleted with `kubectl delete pod` is replaced by its controller: a new pod (new
        # name, except a StatefulSet's, and a new uid) that follows the scenario's
        # `replacements` timeline from its creation, or the workload's own timeline.
        generation, replaced_at = (record.get("replaced") or {}).get(str(i), [0, None])
        pod_record, pod_state, pod_since, pod_at = record, state, since, at
        if generation:
            pod_record = {
                **record,
                "applied_at": replaced_at,
                "created_at": f"{record['created_at']}-{generation}",
            }
            timeline = (scenario.get("replacements") or {}).get(f"{kind}/{name}")
            if timeline:
                pod_scenario = {**scenario, "workloads": {f"{kind}/{name}": timeline}}
                pod_state, pod_at = current_state(
                    pod_scenario, kind, name, now - replaced_at, pod_template_spec, cluster
                )
                pod_since = replaced_at + pod_at
        extra: dict[str, str] = {}
        generate = f"{name}-"
        if kind == "Deployment":
            rs_hash = template_hash(template)
            extra = {"pod-template-hash": rs_hash}
            generate = f"{name}-{rs_hash}-"
            rs = f"{name}-{rs_hash}"
            pod_owner = {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": rs,
                "uid": uid_of(ns, rs, record["created_at"]),
            }
        else:
            pod_owner = owner
        if kind == "StatefulSet":
            pod_name = f"{name}-{i}"
            extra = {
                "apps.kubernetes.io/pod-index": str(i),
                "controller-revision-hash": revision,
                "statefulset.kubernetes.io/pod-name": pod_name,
            }
        else:
            pod_name = generate + safe_name(
                5, ns, generate, template_hash(template), i, pod_record["created_at"]
            )
        if kind == "DaemonSet":
            extra = {"controller-revision-hash": revision.rsplit("-", 1)[1], "pod-template-generation": "1"}
        if kind == "Job":
            extra = {
                "batch.kubernetes.io/controller-uid": meta["uid"],
                "batch.kubernetes.io/job-name": name,
                "controller-uid": meta["uid"],
                "job-name": name,
            }
        owner_ref = {**pod_owner, "blockOwnerDeletion": True, "controller": True}
        served(kind, name, pod_name, pod_at)
        pods.append(
            build_pod(
                pod_name,
                generate,
                {**labels, **extra},
                owner_ref,
                template,
                pod_state,
                pod_since,
                pod_record,
                cluster,
            )
        )
    return pods


def all_pods(
    api: dict, cluster: dict, scenario: dict, now: float, namespace: str | None = None
) -> list[dict]:
    return [pod for pod, _ in all_pods_with_events(api, cluster, scenario, now, namespace)]


def all_pods_with_events(
    api: dict, cluster: dict, scenario: dict, now: float, namespace: str | None
) -> list[tuple[dict, list[dict]]]:
    found = []
    for kind in WORKLOAD_KINDS:
        for record in records(api, kind, namespace):
            found.extend(workload_pods(record, cluster, scenario, now))
    return sorted(found, key=lambda p: (p[0]["metadata"]["namespace"], p[0]["metadata"]["name"]))


def default_pull_policy(image: str) -> str:
    # k8s: pkg/apis/core/v1/defaults.go: Always for :latest or no tag, else IfNotPresent.
    last = image.rsplit("/", 1)[-1]
    return "Always" if "@" not in image and (":" not in last or last.endswith(":latest")) else "IfNotPresent"


def pod_spec(template_spec: dict, volume: str, node: str | None) -> dict:
    """The pod spec as the API server returns it: the template plus the defaulted fields."""
    spec = copy.deepcopy(template_spec)
    mount = {"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "name": volume, "readOnly": True}
    for container in spec.get("initContainers", []) + spec.get("containers", []):
        container.setdefault("imagePullPolicy", default_pull_policy(container.get("image", "")))
        container.setdefault("resources", {})
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        for port in container.get("ports", []):
            port.setdefault("protocol", "TCP")
        container["volumeMounts"] = [*container.get("volumeMounts", []), mount]
    defaults = {
        "dnsPolicy": "ClusterFirst",
        "enableServiceLinks": True,
        "preemptionPolicy": "PreemptLowerPriority",
        "priority": 0,
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "securityContext": {},
        "serviceAccount": "default",
        "serviceAccountName": "default",
        "terminationGracePeriodSeconds": 30,
        "tolerations": [
            {
                "effect": "NoExecute",
                "key": f"node.kubernetes.io/{k}",
                "operator": "Exists",
                "tolerationSeconds": 300,
            }
            for k in ("not-ready", "unreachable")
        ],
    }
    spec = {**defaults, **spec}
    spec["volumes"] = [
        *spec.get("volumes", []),
        {
            "name": volume,
            "projected": {
                "defaultMode": 420,
                "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {
                        "configMap": {
                            "items": [{"key": "ca.crt", "path": "ca.crt"}],
                            "name": "kube-root-ca.crt",
                        }
                    },
                    {
                        "downwardAPI": {
                            "items": [
                                {
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                                    "path": "namespace",
                                }
                            ]
                        }
                    },
                ],
            },
        },
    ]
    if node:
        spec["nodeName"] = node
    return spec


def backoff(restarts: int) -> str:
    # k8s: kubelet crash-loop back-off, 10s doubling up to 5m.
    return go_duration(min(10 * 2 ** max(restarts - 1, 0), 300))


def waiting_message(reason: str, container: dict, pod: str, ns: str, uid: str, restarts: int) -> str | None:
    """The kubelet's message for each waiting reason (k8s: pkg/kubelet/images, kuberuntime)."""
    image = container.get("image", "")
    full = normalized_image(image)
    command = (container.get("command") or [container["name"]])[0]
    return {
        # k8s: pkg/kubelet/images/image_manager.go: the message is the CRI error as is (gRPC's
        # "rpc error: code = … desc = …"); containerd's text for a Docker Hub repository that does
        # not exist, as a kind node shows it (kubernetes-sigs/kind#2474).
        "ErrImagePull": (
            f'rpc error: code = Unknown desc = failed to pull and unpack image "{full}": failed to resolve '
            f'reference "{full}": pull access denied, repository does not exist or may require '
            "authorization: server message: insufficient_scope: authorization failed"
        ),
        "ImagePullBackOff": f'Back-off pulling image "{image}"',
        "ErrImageNeverPull": f'Container image "{image}" is not present with pull policy of Never',
        "InvalidImageName": f'Failed to apply default image tag "{image}": couldn\'t parse image name "{image}": invalid reference format',
        "CreateContainerConfigError": f'configmap "{container["name"]}-config" not found',
        "CreateContainerError": "context deadline exceeded",
        "RunContainerError": (
            "failed to create containerd task: failed to create shim task: OCI runtime create failed: runc "
            f'create failed: unable to start container process: exec: "{command}": executable file not '
            "found in $PATH: unknown"
        ),
        "CrashLoopBackOff": f"back-off {backoff(restarts)} restarting failed container={container['name']} pod={pod}_{ns}({uid})",
    }.get(reason)


def container_status(
    container: dict, fields: dict, phase: str, since: float, pod: dict, init: bool = False
) -> dict:
    """A containerStatus in the API's shape (k8s: staging/src/k8s.io/api/core/v1/types.go).

    ``fields`` are the state's (waiting, message, ready, restarts, last_exit_code, last_reason);
    an init container with ``done`` has completed.
    """
    meta = pod["metadata"]
    name = container["name"]
    waiting = fields.get("waiting")
    crash_looped = waiting == "CrashLoopBackOff" or "last_exit_code" in fields
    restarts = int(fields.get("restarts", 1 if crash_looped else 0))
    exit_code = int(fields.get("last_exit_code", 1))
    reason = fields.get("last_reason", "Error" if exit_code else "Completed")
    current_id = f"containerd://{digest(meta['uid'], name, restarts)}"
    last: dict = {}
    if restarts:
        last = {
            "terminated": {
                "containerID": f"containerd://{digest(meta['uid'], name, restarts - 1)}",
                "exitCode": exit_code,
                "finishedAt": rfc3339(since),
                "reason": reason,
                "startedAt": rfc3339(since - 1),
            }
        }
    if waiting:
        message = fields.get("message") or waiting_message(
            waiting, container, meta["name"], meta["namespace"], meta["uid"], restarts
        )
        state: dict = {"waiting": {"reason": waiting, **({"message": message} if message else {})}}
    elif phase == "Pending" and not init:
        state = {"waiting": {"reason": "ContainerCreating"}}
    elif (phase in ("Succeeded", "Failed") and not init) or fields.get("done"):
        failed = phase == "Failed" and not init
        state = {
            "terminated": {
                "containerID": current_id,
                "exitCode": exit_code if failed else 0,
                "finishedAt": rfc3339(since),
                "reason": reason if failed else "Completed",
                "startedAt": rfc3339(since - 1),
            }
        }
    else:
        state = {"running": {"startedAt": rfc3339(since)}}
    running = "running" in state
    status: dict[str, Any] = {}
    if running or "terminated" in state:
        status["containerID"] = current_id
    elif last:  # waiting to restart: the kubelet still reports the last container
        status["containerID"] = last["terminated"]["containerID"]
    ready = (running and not init and fields.get("ready", True)) or (init and "terminated" in state)
    return {
        **status,
        "image": container.get("image", ""),
        "imageID": image_id(container.get("image", "")) if status else "",
        "lastState": last,
        "name": name,
        "ready": bool(ready),
        "restartCount": restarts,
        "started": running,
        "state": state,
        "volumeMounts": [
            {**m, "recursiveReadOnly": "Disabled"}
            for m in container.get("volumeMounts", [])
            if m.get("readOnly")
        ],
    }


def image_id(image: str) -> str:
    """containerd's image ID as the kubelet reports it: the repository @ a digest."""
    return f"{normalized_image(image).rsplit(':', 1)[0].split('@')[0]}@sha256:{digest('image', image)}"


def condition(kind: str, ok: bool, at: float, reason: str = "", message: str = "") -> dict:
    found = {
        "lastProbeTime": None,
        "lastTransitionTime": rfc3339(at),
        "status": "True" if ok else "False",
        "type": kind,
    }
    if not ok and reason:
        found["reason"] = reason
    if not ok and message:
        found["message"] = message
    return found


# The pod shapes mirror real `kubectl get pod -o json|yaml` output of kubernetes v1.3x: a full pod
# (kubernetes/kubernetes#137697), a CrashLoopBackOff containerStatus (traPtitech/NeoShowcase#725)
# and an ImagePullBackOff one (podman-desktop/podman-desktop#7521).
def build_pod(
    name: str,
    generate_name: str,
    labels: dict,
    owner: dict | None,
    template: dict,
    state: dict,
    since: float,
    record: dict,
    cluster: dict,
) -> tuple[dict, list[dict]]:
    obj_meta = record["object"]["metadata"]
    ns = obj_meta["namespace"]
    created = record["applied_at"]
    scheduled = state.get("scheduled", True)
    phase = state.get("phase", "Running") if scheduled else "Pending"
    uid = obj_meta["uid"] if owner is None else uid_of(ns, name, record["created_at"])
    meta: dict[str, Any] = {
        "creationTimestamp": rfc3339(created),
        **({"generateName": generate_name} if generate_name else {}),
        "labels": labels,
        "name": name,
        "namespace": ns,
        **({"ownerReferences": [owner]} if owner else {}),
        "resourceVersion": obj_meta["resourceVersion"],
        "uid": uid,
    }
    annotations = (template.get("metadata") or {}).get("annotations")
    if annotations:
        meta["annotations"] = annotations
    if not labels:
        meta.pop("labels")
    spec = pod_spec(
        template.get("spec") or {},
        f"kube-api-access-{safe_name(5, uid)}",
        cluster["node"] if scheduled else None,
    )
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
    status: dict[str, Any] = {"phase": phase, "qosClass": qos_class(spec)}
    if not scheduled:
        message = state.get("message") or (
            "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. preemption: "
            "0/1 nodes are available: 1 Preemption is not helpful for scheduling."
        )
        status["conditions"] = [condition("PodScheduled", False, created, "Unschedulable", message)]
        pod["status"] = status
        return pod, pod_events(pod, since, message)
    init_specs = spec.get("initContainers", [])
    init_fields = state.get("init")
    trouble = {
        k: state[k]
        for k in ("waiting", "message", "ready", "restarts", "last_exit_code", "last_reason")
        if k in state
    }
    target = state.get("container")
    names = [c["name"] for c in spec["containers"]]
    if target is not None and target not in names:
        raise Failure(f"fake: scenario state names container {target!r}, but the pod has {names}")
    # The default timeline's image pull failures (k8s: pkg/kubelet/kuberuntime SyncPod): init
    # containers run in order, so the first that cannot be pulled holds back the rest and every
    # container; after init, each container whose image cannot be pulled waits, the others run.
    pull_failures = state.get("pull_failures") or {}
    blocked = False
    init_statuses = []
    for i, container in enumerate(init_specs):
        if blocked:
            fields = {"waiting": "PodInitializing"}
        elif container["name"] in pull_failures:
            fields = {"waiting": pull_failures[container["name"]]}
            blocked = True
        elif init_fields is None:
            fields = {"done": True}
        elif i == 0:
            fields = init_fields
        else:
            fields = {"waiting": "PodInitializing"}
        init_statuses.append(container_status(container, fields, phase, since, pod, init=True))
    statuses = []
    for container in spec["containers"]:
        if init_fields is not None or blocked:
            statuses.append(container_status(container, {"waiting": "PodInitializing"}, phase, since, pod))
        elif container["name"] in pull_failures:
            statuses.append(
                container_status(container, {"waiting": pull_failures[container["name"]]}, phase, since, pod)
            )
        elif pull_failures or (target is not None and container["name"] != target):  # they run, ready
            statuses.append(
                container_status(container, {}, "Running" if phase == "Pending" else phase, since, pod)
            )
        else:
            statuses.append(container_status(container, trouble, phase, since, pod))
    creating = all(
        s["state"].get("waiting", {}).get("reason") == "ContainerCreating"
        for s in (init_statuses[:1] or statuses)
    )
    sandbox = not creating and phase not in ("Succeeded", "Failed")
    unready = [s["name"] for s in statuses if not s["ready"]]
    done = phase in ("Succeeded", "Failed")
    uninitialized = [s["name"] for s in init_statuses if not s["ready"]]
    status["conditions"] = [
        condition("PodReadyToStartContainers", sandbox, since),
        condition(
            "Initialized",
            not uninitialized,
            since,
            "ContainersNotInitialized",
            f"containers with incomplete status: [{' '.join(uninitialized)}]",
        ),
        condition(
            "Ready",
            not unready and not done,
            since,
            "PodCompleted" if done else "ContainersNotReady",
            "" if done else f"containers with unready status: [{' '.join(unready)}]",
        ),
        condition(
            "ContainersReady",
            not unready and not done,
            since,
            "PodCompleted" if done else "ContainersNotReady",
            "" if done else f"containers with unready status: [{' '.join(unready)}]",
        ),
        condition("PodScheduled", True, created),
    ]
    status["containerStatuses"] = statuses
    status["hostIP"] = cluster["host_ip"]
    status["hostIPs"] = [{"ip": cluster["host_ip"]}]
    if init_statuses:
        status["initContainerStatuses"] = init_statuses
    if not creating:
        pod_ip = f"10.244.0.{2 + int(digest(uid), 16) % 250}"
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    status["startTime"] = rfc3339(created)
    pod["status"] = status
    return pod, pod_events(pod, since, None)


def qos_class(spec: dict) -> str:
    resources = [c.get("resources") or {} for c in spec.get("containers", [])]
    return "Burstable" if any(r.get("requests") or r.get("limits") for r in resources) else "BestEffort"


# -- events --------------------------------------------------------------------------------------


def event(
    involved: dict,
    reason: str,
    message: str,
    at: float,
    *,
    kind: str = "Normal",
    count: int = 1,
    first: float | None = None,
    component: str = "kubelet",
    host: str = "",
    field_path: str = "",
) -> dict:
    """A core/v1 Event as `kubectl get events -o json` shows it (k8s: api/core/v1 Event).

    The scheduler records through events.k8s.io, so its events have eventTime, a reporting
    controller, and null first/lastTimestamp and no count in the v1 view (kubernetes#89689).
    """
    first = at if first is None else first
    name = f"{involved['name']}.{int(first * 1e9) + int(digest(reason, field_path, message)[:6], 16):x}"
    ref = {
        "apiVersion": involved["apiVersion"],
        **({"fieldPath": field_path} if field_path else {}),
        "kind": involved["kind"],
        "name": involved["name"],
        "namespace": involved["namespace"],
        "resourceVersion": involved.get("resourceVersion", ""),
        "uid": involved["uid"],
    }
    found: dict[str, Any] = {
        "apiVersion": "v1",
        "involvedObject": ref,
        "kind": "Event",
        "message": message,
        "metadata": {
            "creationTimestamp": rfc3339(first),
            "name": name,
            "namespace": involved["namespace"],
            "resourceVersion": involved.get("resourceVersion", ""),
            "uid": uid_of("event", name),
        },
        "reason": reason,
        "type": kind,
    }
    if component == "default-scheduler":
        found.update(
            action="Binding" if reason == "Scheduled" else "Scheduling",
            eventTime=f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(first))}.{int(first % 1 * 1e6):06d}Z",
            firstTimestamp=None,
            lastTimestamp=None,
            reportingComponent="default-scheduler",
            reportingInstance=f"default-scheduler-{host}" if host else "default-scheduler",
            source={},
        )
    else:
        found.update(
            count=count,
            eventTime=None,
            firstTimestamp=rfc3339(first),
            lastTimestamp=rfc3339(at),
            reportingComponent=component,
            reportingInstance=host,
            source={"component": component, **({"host": host} if host else {})},
        )
    return found


def involved_of(obj: dict) -> dict:
    meta = obj["metadata"]
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        **{k: meta.get(k, "") for k in ("name", "namespace", "uid", "resourceVersion")},
    }


def pod_events(pod: dict, since: float, unschedulable: str | None) -> list[dict]:
    """The events the scheduler and the kubelet record for a pod in this state (k8s: pkg/kubelet/events)."""
    involved = involved_of(pod)
    created = to_epoch(pod["metadata"]["creationTimestamp"])
    if unschedulable is not None:
        return [
            event(
                involved,
                "FailedScheduling",
                unschedulable,
                created,
                kind="Warning",
                component="default-scheduler",
            )
        ]
    ns, name, node = pod["metadata"]["namespace"], pod["metadata"]["name"], pod["spec"]["nodeName"]
    found = [
        event(
            involved,
            "Scheduled",
            f"Successfully assigned {ns}/{name} to {node}",
            created,
            component="default-scheduler",
            host=node,
        )
    ]
    for field in ("initContainers", "containers"):
        specs = {c["name"]: c for c in pod["spec"].get(field, [])}
        for status in pod["status"].get(
            "initContainerStatuses" if field == "initContainers" else "containerStatuses", []
        ):
            for reason, message, kind, count in container_events(specs[status["name"]], status, pod):
                path = f"spec.{field}{{{status['name']}}}"
                found.append(
                    event(
                        involved,
                        reason,
                        message,
                        since,
                        kind=kind,
                        count=count,
                        first=created,
                        host=node,
                        field_path=path,
                    )
                )
    return found


def container_events(container: dict, status: dict, pod: dict) -> list[tuple[str, str, str, int]]:
    """(reason, message, type, count) of the kubelet's events for one container."""
    image, name = status["image"], status["name"]
    waiting = status["state"].get("waiting", {})
    reason, message = waiting.get("reason"), waiting.get("message", "")
    if reason in ("ContainerCreating", "PodInitializing"):
        return []
    if reason in ("ErrImagePull", "ImagePullBackOff"):
        meta = pod["metadata"]
        pull_error = waiting_message(
            "ErrImagePull", container, meta["name"], meta["namespace"], meta["uid"], 0
        )
        found = [
            ("Pulling", f'Pulling image "{image}"', "Normal", 1),
            ("Failed", f'Failed to pull image "{image}": {pull_error}', "Warning", 1),
            ("Failed", "Error: ErrImagePull", "Warning", 1),
        ]
        if reason == "ImagePullBackOff":
            found += [
                ("BackOff", f'Back-off pulling image "{image}"', "Normal", 1),
                ("Failed", "Error: ImagePullBackOff", "Warning", 1),
            ]
        return found
    if reason in ("ErrImageNeverPull", "InvalidImageName"):
        first = "ErrImageNeverPull" if reason == "ErrImageNeverPull" else "InspectFailed"
        return [(first, message, "Warning", 1), ("Failed", f"Error: {reason}", "Warning", 1)]
    runs = status["restartCount"] + (0 if reason else 1)
    if container["imagePullPolicy"] == "Always":
        found = [
            ("Pulling", f'Pulling image "{image}"', "Normal", max(runs, 1)),
            (
                "Pulled",
                f'Successfully pulled image "{image}" in 1.2s (1.2s including waiting). Image size: 2104832 bytes.',
                "Normal",
                max(runs, 1),
            ),
        ]
    else:
        found = [("Pulled", f'Container image "{image}" already present on machine', "Normal", max(runs, 1))]
    if reason in ("CreateContainerConfigError", "CreateContainerError"):
        return [*found, ("Failed", f"Error: {message}", "Warning", 1)]
    if reason == "RunContainerError":
        return [
            *found,
            ("Created", f"Created container: {name}", "Normal", 1),
            ("Failed", f"Error: {message}", "Warning", 1),
        ]
    found += [
        ("Created", f"Created container: {name}", "Normal", runs),
        ("Started", f"Started container {name}", "Normal", runs),
    ]
    if reason == "CrashLoopBackOff":
        meta = pod["metadata"]
        found.append(
            (
                "BackOff",
                f"Back-off restarting failed container {name} in pod {meta['name']}_{meta['namespace']}({meta['uid']})",
                "Warning",
                status["restartCount"],
            )
        )
    probe = container.get("readinessProbe")
    if probe and "running" in status["state"] and not status["ready"]:
        found.append(("Unhealthy", f"Readiness probe failed: {probe_failure(probe, pod)}", "Warning", 1))
    return found


def probe_failure(probe: dict, pod: dict) -> str:
    ip = pod["status"].get("podIP", "")
    if "httpGet" in probe:
        port = probe["httpGet"].get("port")
        return f'Get "http://{ip}:{port}{probe["httpGet"].get("path", "/")}": dial tcp {ip}:{port}: connect: connection refused'
    if "tcpSocket" in probe:
        return f"dial tcp {ip}:{probe['tcpSocket'].get('port')}: connect: connection refused"
    return ""


def workload_events(record: dict, pods: list[dict]) -> list[dict]:
    """The controllers' events for a workload (k8s: pkg/controller/{deployment,replicaset,...})."""
    obj = record["object"]
    kind, name, ns = obj["kind"], obj["metadata"]["name"], obj["metadata"]["namespace"]
    at = record["applied_at"]
    found = []
    if kind == "Deployment" and pods:
        owner = pods[0]["metadata"]["ownerReferences"][0]
        found.append(
            event(
                involved_of(obj),
                "ScalingReplicaSet",
                f"Scaled up replica set {owner['name']} from 0 to {len(pods)}",
                at,
                component="deployment-controller",
            )
        )
        rs = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": owner["name"],
            "namespace": ns,
            "uid": owner["uid"],
        }
        found.extend(
            event(
                rs,
                "SuccessfulCreate",
                f"Created pod: {p['metadata']['name']}",
                at,
                component="replicaset-controller",
            )
            for p in pods
        )
    elif kind == "StatefulSet":
        found.extend(
            event(
                involved_of(obj),
                "SuccessfulCreate",
                f"create Pod {p['metadata']['name']} in StatefulSet {name} successful",
                at,
                component="statefulset-controller",
            )
            for p in pods
        )
    elif kind in ("DaemonSet", "ReplicaSet", "Job"):
        component = {
            "DaemonSet": "daemonset-controller",
            "ReplicaSet": "replicaset-controller",
            "Job": "job-controller",
        }[kind]
        found.extend(
            event(
                involved_of(obj),
                "SuccessfulCreate",
                f"Created pod: {p['metadata']['name']}",
                at,
                component=component,
            )
            for p in pods
        )
        if kind == "Job" and pods:
            phases = {p["status"]["phase"] for p in pods}
            if phases == {"Succeeded"}:
                found.append(
                    event(involved_of(obj), "Completed", "Job completed", at, component="job-controller")
                )
            elif "Failed" in phases:
                found.append(
                    event(
                        involved_of(obj),
                        "BackoffLimitExceeded",
                        "Job has reached the specified backoff limit",
                        at,
                        kind="Warning",
                        component="job-controller",
                    )
                )
    return found


def all_events(api: dict, cluster: dict, scenario: dict, now: float, namespace: str | None) -> list[dict]:
    found = [e for e in api["events"] if namespace is None or e["metadata"]["namespace"] == namespace]
    for kind in WORKLOAD_KINDS:
        for record in records(api, kind, namespace):
            pods = workload_pods(record, cluster, scenario, now)
            found.extend(workload_events(record, [p for p, _ in pods]))
            for _, events in pods:
                found.extend(events)
    return sorted(found, key=lambda e: (e["metadata"]["namespace"], e["metadata"]["name"]))


# -- workload status -------------------------------------------------------------------------------


def service_as_served(record: dict) -> dict:
    """A Service as the API server returns it: a cluster IP from kind's service range
    (10.96.0.0/16), the defaults of pkg/apis/core/v1/defaults.go (protocol TCP, targetPort = port,
    sessionAffinity None, type ClusterIP, internalTrafficPolicy Cluster, single-stack IPv4) and an
    empty load-balancer status; a NodePort/LoadBalancer port gets a nodePort (30000-32767)."""
    obj = copy.deepcopy(record["object"])
    spec = obj.setdefault("spec", {})
    uid = obj["metadata"]["uid"]
    number = int(hashlib.sha256(uid.encode()).hexdigest(), 16)
    kind = spec.setdefault("type", "ClusterIP")
    if kind != "ExternalName":
        if spec.get("clusterIP") != "None":
            spec["clusterIP"] = spec.get("clusterIP") or f"10.96.{number % 254 + 1}.{number // 254 % 254 + 1}"
        spec["clusterIPs"] = [spec["clusterIP"]]
        spec.setdefault("internalTrafficPolicy", "Cluster")
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
    for i, port in enumerate(spec.get("ports") or []):
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))
        if kind in ("NodePort", "LoadBalancer"):
            port.setdefault("nodePort", 30000 + (number + i) % 2768)
    spec.setdefault("sessionAffinity", "None")
    if kind in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    obj["status"] = {"loadBalancer": {}}
    return obj


def deployment_replicaset(record: dict, pods: list[dict]) -> dict:
    """The ReplicaSet of a Deployment's current template, as the deployment controller makes it
    (k8s: pkg/controller/deployment/sync.go getNewReplicaSet: name ``<deployment>-<hash>``, the
    ``pod-template-hash`` label on it, its selector and its template, the ``desired-replicas``,
    ``max-replicas`` and ``revision`` annotations, the Deployment as its controller); its pods are
    the Deployment's (their ownerReferences name it, with its uid)."""
    deployment = record["object"]
    meta, spec = deployment["metadata"], deployment.get("spec") or {}
    template = copy.deepcopy(spec.get("template") or {})
    rs_hash = template_hash(spec.get("template") or {})
    name, ns = f"{meta['name']}-{rs_hash}", meta["namespace"]
    labels = {**((template.get("metadata") or {}).get("labels") or {}), "pod-template-hash": rs_hash}
    template.setdefault("metadata", {})["labels"] = labels
    selector = copy.deepcopy(spec.get("selector") or {})
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}), "pod-template-hash": rs_hash}
    replicas = int(spec.get("replicas", 1))
    strategy = spec.get("strategy") or {}
    surge = (strategy.get("rollingUpdate") or {}).get("maxSurge", "25%")
    if strategy.get("type") == "Recreate":
        surge = 0
    # k8s: pkg/controller/deployment/util MaxSurge: a percentage rounds up
    extra = -(-replicas * int(surge[:-1]) // 100) if isinstance(surge, str) else int(surge)
    obj = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "annotations": {
                "deployment.kubernetes.io/desired-replicas": str(replicas),
                "deployment.kubernetes.io/max-replicas": str(replicas + extra),
                "deployment.kubernetes.io/revision": meta["annotations"]["deployment.kubernetes.io/revision"],
            },
            "creationTimestamp": rfc3339(record["applied_at"]),
            "generation": 1,
            "labels": labels,
            "name": name,
            "namespace": ns,
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "blockOwnerDeletion": True,
                    "controller": True,
                    "kind": "Deployment",
                    "name": meta["name"],
                    "uid": meta["uid"],
                }
            ],
            "resourceVersion": meta["resourceVersion"],
            "uid": uid_of(ns, name, record["created_at"]),
        },
        "spec": {"replicas": replicas, "selector": selector, "template": template},
    }
    return with_status({**record, "object": obj}, pods, record["applied_at"])


def with_status(record: dict, pods: list[dict], now: float) -> dict:
    """The object as `kubectl get -o json` returns it: as applied, with the server's metadata and status.

    k8s: api/apps/v1 and api/batch/v1 types; the reasons and messages of pkg/controller/deployment/util
    (MinimumReplicasAvailable, NewReplicaSetAvailable, ReplicaSetUpdated, ProgressDeadlineExceeded).
    """
    obj = copy.deepcopy(record["object"])
    kind, name, meta, spec = obj["kind"], obj["metadata"]["name"], obj["metadata"], obj.get("spec") or {}
    total = len(pods)
    ready = sum(
        all(s["ready"] for s in p["status"].get("containerStatuses", []))
        and p["status"]["phase"] == "Running"
        for p in pods
    )
    applied = record["applied_at"]
    generation = meta.get("generation", 1)
    if kind == "Deployment":
        rs = (
            pods[0]["metadata"]["ownerReferences"][0]["name"]
            if pods
            else f"{name}-{template_hash(spec.get('template') or {})}"
        )
        available = ready >= total
        deadline = spec.get("progressDeadlineSeconds", 600)
        if available:
            progressing = condition("Progressing", True, applied)
            progressing.update(
                reason="NewReplicaSetAvailable", message=f'ReplicaSet "{rs}" has successfully progressed.'
            )
        elif now - applied > deadline:
            progressing = condition(
                "Progressing",
                False,
                applied + deadline,
                "ProgressDeadlineExceeded",
                f'ReplicaSet "{rs}" has timed out progressing.',
            )
        else:
            progressing = condition("Progressing", True, applied)
            progressing.update(reason="ReplicaSetUpdated", message=f'ReplicaSet "{rs}" is progressing.')
        if available:
            availability = condition("Available", True, applied)
            availability.update(
                reason="MinimumReplicasAvailable", message="Deployment has minimum availability."
            )
        else:
            availability = condition(
                "Available",
                False,
                applied,
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            )
        for found in (availability, progressing):
            found.pop("lastProbeTime")
            found["lastUpdateTime"] = found["lastTransitionTime"]
        status = {
            "availableReplicas": ready,
            "conditions": [availability, progressing],
            "observedGeneration": generation,
            "readyReplicas": ready,
            "replicas": total,
            "unavailableReplicas": total - ready,
            "updatedReplicas": total,
        }
    elif kind == "StatefulSet":
        revision = f"{name}-{template_hash(spec.get('template') or {})}"
        status = {
            "availableReplicas": ready,
            "collisionCount": 0,
            "currentReplicas": total,
            "currentRevision": revision,
            "observedGeneration": generation,
            "readyReplicas": ready,
            "replicas": total,
            "updateRevision": revision,
            "updatedReplicas": total,
        }
    elif kind == "DaemonSet":
        status = {
            "currentNumberScheduled": total,
            "desiredNumberScheduled": total,
            "numberAvailable": ready,
            "numberMisscheduled": 0,
            "numberReady": ready,
            "numberUnavailable": total - ready,
            "observedGeneration": generation,
            "updatedNumberScheduled": total,
        }
    elif kind == "ReplicaSet":  # k8s: pkg/controller/replicaset calculateStatus
        status = {
            "availableReplicas": ready,
            "fullyLabeledReplicas": total,
            "observedGeneration": generation,
            "readyReplicas": ready,
            "replicas": total,
        }
    elif kind == "Job":
        phases = [p["status"]["phase"] for p in pods]
        status = {
            "active": sum(p in ("Pending", "Running") for p in phases),
            "failed": phases.count("Failed"),
            "ready": ready,
            "startTime": rfc3339(applied),
            "succeeded": phases.count("Succeeded"),
            "terminating": 0,
            "uncountedTerminatedPods": {},
        }
        # k8s: pkg/controller/job: SuccessCriteriaMet + Complete, or FailureTarget + Failed.
        if phases and set(phases) == {"Succeeded"}:
            finished = [
                c["state"]["terminated"]["finishedAt"] for p in pods for c in p["status"]["containerStatuses"]
            ]
            status["completionTime"] = max(finished)
            status["conditions"] = [
                {
                    **condition(c, True, applied),
                    "lastProbeTime": rfc3339(applied),
                    "message": "Reached expected number of succeeded pods",
                    "reason": "CompletionsReached",
                }
                for c in ("SuccessCriteriaMet", "Complete")
            ]
        elif "Failed" in phases:
            status["conditions"] = [
                {
                    **condition(c, True, applied),
                    "lastProbeTime": rfc3339(applied),
                    "message": "Job has reached the specified backoff limit",
                    "reason": "BackoffLimitExceeded",
                }
                for c in ("FailureTarget", "Failed")
            ]
    else:
        return obj
    kept = {
        "observedGeneration",
        "ready",
        "terminating",
        "numberMisscheduled",
        "numberReady",
        "collisionCount",
    }
    kept |= {"currentNumberScheduled", "desiredNumberScheduled", "updatedNumberScheduled", "replicas"}
    if kind == "StatefulSet":
        kept.add("availableReplicas")
    obj["status"] = {k: v for k, v in status.items() if v != 0 or k in kept}  # the API's omitempty
    return obj


# -- kubectl ---------------------------------------------------------------------------------------


def unmodelled(*names: str, flag: bool = False) -> list[Opt]:
    """Real kubectl flags the fake does not model: "name" or "name/s" (with a shorthand)."""
    found = []
    for entry in names:
        long, _, short = entry.partition("/")
        found.append(Opt(long, short, takes_value=not flag, modelled=False))
    return found


# kubectl v1.32: `kubectl options` (the global flags) and each command's `--help`.
GLOBAL_OPTS = [
    Opt("kubeconfig"),
    Opt("namespace", "n"),
    Opt("context"),
    Opt("request-timeout"),
    Opt("v", "v"),
    *unmodelled(
        "as", "as-group", "as-uid", "cache-dir", "certificate-authority", "client-certificate",
        "client-key", "cluster", "log-flush-frequency", "password", "profile", "profile-output",
        "server/s", "tls-server-name", "token", "user", "username", "vmodule",
    ),
    *unmodelled(
        "disable-compression", "insecure-skip-tls-verify", "match-server-version", "warnings-as-errors",
        flag=True,
    ),
]  # fmt: skip
OUTPUT = Opt("output", "o")
KUBECTL_COMMANDS: dict[str, list[Opt]] = {
    "version": [OUTPUT, Opt("client", takes_value=False)],
    "kustomize": [],  # delegated to the real kubectl, flags and all
    "apply": [
        Opt("filename", "f", repeated=True),
        Opt("kustomize", "k"),
        OUTPUT,
        Opt("server-side", takes_value=False),
        Opt("field-manager"),
        Opt("force-conflicts", takes_value=False),
        Opt("dry-run", bare="unchanged"),
        Opt("validate", bare="strict"),
        *unmodelled("prune-allowlist", "selector/l", "template", "timeout", "grace-period", "cascade"),
        *unmodelled("subresource", "openapi-patch"),
        *unmodelled(
            "all",
            "allow-missing-template-keys",
            "force",
            "overwrite",
            "prune",
            "recursive/R",
            "show-managed-fields",
            "wait",
            flag=True,
        ),
    ],
    "get": [
        OUTPUT,
        Opt("selector", "l"),
        Opt("all-namespaces", "A", takes_value=False),
        Opt("ignore-not-found", takes_value=False),  # the existing target's namespace lookup
        *unmodelled("chunk-size", "field-selector", "filename/f", "kustomize/k", "label-columns/L"),
        *unmodelled("sort-by", "subresource", "template", "raw"),
        *unmodelled(
            "no-headers",
            "output-watch-events",
            "recursive/R",
            "server-print",
            "show-kind",
            "show-labels",
            "show-managed-fields",
            "watch/w",
            "watch-only",
            "allow-missing-template-keys",
            flag=True,
        ),
    ],
    "describe": [
        *unmodelled("chunk-size", "filename/f", "kustomize/k", "selector/l"),
        *unmodelled("all-namespaces/A", "recursive/R", "show-events", flag=True),
    ],
    "logs": [
        Opt("container", "c"),
        Opt("previous", "p", takes_value=False),
        Opt("tail"),
        *unmodelled("limit-bytes", "max-log-requests", "pod-running-timeout", "selector/l", "since"),
        *unmodelled("since-time"),
        *unmodelled(
            "all-containers",
            "all-pods",
            "follow/f",
            "ignore-errors",
            "insecure-skip-tls-verify-backend",
            "prefix",
            "timestamps",
            flag=True,
        ),
    ],
    "port-forward": [Opt("address", repeated=True), *unmodelled("pod-running-timeout")],
    "config": [OUTPUT],  # `config get-contexts -o name` only (kubectl_config)
    "delete": [
        Opt("filename", "f", repeated=True),
        Opt("ignore-not-found", takes_value=False),
        Opt("wait", takes_value=False),
        *unmodelled("cascade", "dry-run", "field-selector", "grace-period", "kustomize/k", "output/o"),
        *unmodelled("selector/l", "timeout", "raw"),
        *unmodelled("all", "all-namespaces/A", "force", "interactive/i", "now", "recursive/R", flag=True),
    ],
}
# kubectl: cmd/util/printing.go and cli-runtime's printers: the -o values real kubectl knows.
OUTPUT_FORMATS = (
    "custom-columns,custom-columns-file,go-template,go-template-file,json,jsonpath,"
    "jsonpath-as-json,jsonpath-file,name,template,templatefile,wide,yaml"
)


def refused(server: str) -> Failure:
    # kubectl: staging/src/k8s.io/kubectl/pkg/cmd/util/helpers.go (connection refused)
    return Failure(
        f"The connection to the server {server} was refused - did you specify the right host or port?"
    )


@dataclass
class Kubectl:
    state: State
    opts: dict

    @property
    def namespace(self) -> str:
        return self.opts.get("namespace") or "default"

    def server(self) -> tuple[str, dict | None]:
        """The API server of the kubeconfig's current context, and the fake cluster serving it."""
        path = self.opts.get("kubeconfig")
        if path and not Path(path).exists():
            raise Failure(f"error: stat {path}: no such file or directory")
        if not path:
            path = next(
                (p for p in os.environ.get("KUBECONFIG", "").split(":") if p and Path(p).exists()), None
            )
        if not path:  # the fakes never read ~/.kube/config: as if it did not exist
            return "localhost:8080", None
        config = yaml.safe_load(Path(path).read_text()) or {}
        wanted = self.opts.get("context") or config.get("current-context")
        context = next((c["context"] for c in config.get("contexts") or [] if c["name"] == wanted), None)
        if context is None and self.opts.get("context"):
            # client-go: tools/clientcmd validation.go
            raise Failure(f"error: context was not found for specified context: {wanted}")
        if context is None:
            return "localhost:8080", None
        url = next(
            (
                c["cluster"]["server"]
                for c in config.get("clusters") or []
                if c["name"] == context.get("cluster")
            ),
            "",
        )
        server = re.sub(r"^https?://", "", url)
        for cluster in self.state.clusters():
            if cluster["api"] and f"127.0.0.1:{cluster['port']}" == server:
                return server, cluster
        return server, None

    def cluster(self) -> dict:
        server, cluster = self.server()
        if cluster is None:
            raise refused(server)
        return cluster


def run_kubectl(state: State, argv: list[str]) -> int:
    command = None
    before: list[str] = []
    rest = list(argv)
    with_value = {f"--{o.long}" for o in GLOBAL_OPTS if o.takes_value} | {
        f"-{o.short}" for o in GLOBAL_OPTS if o.takes_value and o.short
    }
    while rest:  # global flags may come before the command
        arg = rest.pop(0)
        if not arg.startswith("-"):
            command = arg
            break
        before.append(arg)
        if arg in with_value and rest:
            before.append(rest.pop(0))
    if command is None:
        parse_flags(before, GLOBAL_OPTS, "error: ")
        raise Failure("error: fake kubectl: a command is required (see tests/fakes/README.md)")
    if command not in KUBECTL_COMMANDS:
        raise Failure(f'error: unknown command "{command}" for "kubectl"\nRun \'kubectl --help\' for usage.')
    if command == "kustomize":
        return kubectl_kustomize(argv)
    known = GLOBAL_OPTS + KUBECTL_COMMANDS[command]
    try:
        opts, args = parse_flags(before + rest, known, "error: ")
    except Failure as failure:
        raise Failure(f"{failure.text}\nSee 'kubectl {command} --help' for usage.") from None
    for opt in known:
        if not opt.modelled and opt.long in opts:
            raise Failure(
                f"error: fake kubectl: --{opt.long} is a flag of the real kubectl {command} that the fake "
                "does not model (see tests/fakes/README.md)"
            )
    check_global_flags(opts)
    k = Kubectl(state, opts)
    if command == "version":
        return kubectl_version(k, args)
    if command == "port-forward":
        return kubectl_port_forward(k, args)
    if command == "config":
        return kubectl_config(k, args)
    with state.lock():
        return {
            "apply": kubectl_apply,
            "get": kubectl_get,
            "describe": kubectl_describe,
            "logs": kubectl_logs,
            "delete": kubectl_delete,
        }[command](k, args)


def kubectl_config(k: Kubectl, args: list[str]) -> int:
    """`kubectl config get-contexts -o name`: the kubeconfig's context names, one a line."""
    if args != ["get-contexts"] or k.opts.get("output") != "name":
        raise Failure("error: fake kubectl: only `kubectl config get-contexts -o name` is supported")
    path = k.opts.get("kubeconfig") or next(
        (p for p in os.environ.get("KUBECONFIG", "").split(":") if p and Path(p).exists()), None
    )
    if k.opts.get("kubeconfig") and not Path(path).exists():
        raise Failure(f"error: stat {path}: no such file or directory")
    config = (yaml.safe_load(Path(path).read_text()) or {}) if path else {}
    for context in config.get("contexts") or []:
        out(context["name"])
    return 0


def forbidden_error(scenario: dict, verb: str, kind: Any, ns: str, source: str) -> str | None:
    """The RBAC refusal the scenario's ``forbidden`` scripts (``[{"verb": "create", "resource":
    "namespaces", "user": "ci-bot"}]``), as the API server words it
    (k8s: staging/src/k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go)."""
    for rule in scenario.get("forbidden") or []:
        if rule.get("verb") == verb and rule.get("resource") == kind.resource:
            user = rule.get("user", "system:serviceaccount:ci:stagegate")
            scope = f'in the namespace "{ns}"' if ns else "at the cluster scope"
            return (
                f'Error from server (Forbidden): error when creating "{source}": {kind.resource} is forbidden: '
                f'User "{user}" cannot {verb} resource "{kind.resource}" in API group "{kind.group}" {scope}'
            )
    return None


def check_global_flags(opts: dict) -> None:
    """-v LEVEL and --request-timeout DURATION as kubectl parses them (the fake writes no klog lines)."""
    level = opts.get("v")
    if level is not None:
        if not re.fullmatch(r"\d+", level):
            raise Failure(
                f'error: invalid argument "{level}" for "-v, --v" flag: strconv.ParseInt: parsing "{level}": invalid syntax'
            )
        if int(level) > 4:  # from 5 on kubectl logs its requests; the fake does not
            raise Failure(
                f"error: fake kubectl: -v {level} would log requests, which the fake does not model"
            )
    timeout = opts.get("request-timeout")
    if timeout is not None and not re.fullmatch(r"\d+", timeout) and parse_go_duration(timeout) is None:
        # client-go: tools/clientcmd client_config.go
        raise Failure(
            "error: invalid timeout value. Timeout must be a single integer in seconds, "
            "or an integer followed by a corresponding time unit (e.g. 1s | 2m | 3h)"
        )


def kubectl_version(k: Kubectl, args: list[str]) -> int:
    if args or k.opts.get("output") != "json":
        raise Failure("error: fake kubectl: only `kubectl version [--client] -o json` is supported")
    # kubectl: pkg/cmd/version (the Info struct of k8s.io/apimachinery/pkg/version), 2-space indent.
    info = {
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.2",
        "gitCommit": "67a30c0adcf52bd3f56ff0893ce19966be12991f",
        "gitTreeState": "clean",
        "buildDate": "2025-02-12T21:19:47Z",
        "goVersion": "go1.23.6",
        "compiler": "gc",
        "platform": "linux/amd64",
    }
    version: dict[str, Any] = {"clientVersion": info, "kustomizeVersion": "v5.5.0"}
    failure = None
    if not k.opts.get("client"):
        server, cluster = k.server()
        if cluster is None:
            failure = refused(server)
        else:
            version["serverVersion"] = {**info, "buildDate": "2025-02-20T17:37:55Z"}
    out(json.dumps(version, indent=2))
    if failure:
        raise failure
    return 0


def real_kubectl() -> str | None:
    """The next real kubectl on PATH after tests/fakes/bin."""
    me = Path(sys.argv[0]).resolve()
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(entry or ".") / "kubectl"
        if (
            Path(entry or ".").resolve() == BIN_DIR
            or not os.access(candidate, os.X_OK)
            or candidate.resolve() == me
        ):
            continue
        return str(candidate)
    return None


def kubectl_kustomize(argv: list[str]) -> int:
    """Delegated to the next real kubectl on PATH (kustomize is pure client-side work)."""
    real = real_kubectl()
    if real is not None:
        return subprocess.run([real, *argv], check=False).returncode
    raise Failure(
        "error: fake kubectl: `kubectl kustomize` runs the real kubectl, and there is none on PATH after tests/fakes/bin"
    )


def kustomize_output(directory: str) -> str:
    """`kubectl kustomize DIR` of the next real kubectl on PATH (apply -k builds with it too)."""
    real = real_kubectl()
    if real is None:
        raise Failure(
            "error: fake kubectl: `apply -k` runs the real kubectl's kustomize, and there is none on PATH after tests/fakes/bin"
        )
    result = subprocess.run([real, "kustomize", directory], capture_output=True, text=True, check=False)
    if result.returncode:
        raise Failure(result.stderr.rstrip("\n") or f"error: kustomize {directory} failed")
    return result.stdout


def load_manifests(files: list[str], kustomize: str | None = None) -> list[tuple[str, dict]]:
    """(source, object) for each object of -f FILE|DIR|- (List kinds unpacked) or -k DIR, like kubectl's builder."""
    if not files and not kustomize:
        raise Failure("error: must specify one of -f and -k")
    found = []
    for name in files or [kustomize]:
        if kustomize:
            sources = [(kustomize, kustomize_output(kustomize))]
        elif name == "-":
            sources = [("STDIN", sys.stdin.read())]
        else:
            path = Path(name)
            if not path.exists():
                raise Failure(f'error: the path "{name}" does not exist')
            paths = (
                sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml", ".json"))
                if path.is_dir()
                else [path]
            )
            sources = [(str(p), p.read_text()) for p in paths]
        for source, text in sources:
            try:
                docs = [d for d in yaml.safe_load_all(text) if d]
            except yaml.YAMLError as exc:
                raise Failure(
                    f"error: error parsing {source}: error converting YAML to JSON: {exc}"
                ) from None
            for doc in docs:
                if not isinstance(doc, dict):
                    raise Failure(f"error: error parsing {source}: not a Kubernetes object: {doc!r}")
                missing = [f"{key} not set" for key in ("apiVersion", "kind") if not doc.get(key)]
                if missing:
                    raise Failure(
                        f'error: error validating "{source}": error validating data: [{", ".join(missing)}]; if you choose to ignore these errors, turn validation off with --validate=false'
                    )
                if doc["kind"].endswith("List"):
                    found.extend((source, item) for item in doc.get("items") or [])
                else:
                    found.append((source, doc))
    return found


def resolve(
    source: str, obj: dict, namespace: str, explicit: bool, custom: dict | None = None
) -> tuple[Kind, str, str]:
    kind = KINDS.get(obj["kind"])
    name = (obj.get("metadata") or {}).get("name", "")
    if kind is None or kind.api_version != obj["apiVersion"]:
        kind = (custom or {}).get((obj["apiVersion"], obj["kind"]))
    if kind is None:
        raise Failure(
            f'error: resource mapping not found for name: "{name}" namespace: "{namespace}" from "{source}": '
            f'no matches for kind "{obj["kind"]}" in version "{obj["apiVersion"]}"\nensure CRDs are installed first'
        )
    if not name:
        raise Failure(
            f'error: error when retrieving current configuration of:\nResource: "{kind.resource}", GroupVersionKind: "{obj["apiVersion"]}, Kind={kind.kind}"\nfrom server for: "{source}": resource name may not be empty'
        )
    ns = ""
    if kind.namespaced:
        ns = obj["metadata"].get("namespace") or namespace
        if explicit and ns != namespace:
            raise Failure(
                f'error: the namespace from the provided object "{ns}" does not match the namespace "{namespace}". You must pass \'--namespace={ns}\' to perform this operation.'
            )
    return kind, ns, name


def kubectl_apply(k: Kubectl, args: list[str]) -> int:
    """kubectl: pkg/cmd/apply (the name printer: "deployment.apps/x created|configured|unchanged";
    server errors as "Error from server (Reason): ..."); last-applied-configuration as kubectl writes it."""
    if args:
        raise Failure(f"error: Unexpected args: {args}\nSee 'kubectl apply -h' for help and examples")
    mode = apply_mode(k.opts)
    objects = load_manifests(k.opts.get("filename", []), k.opts.get("kustomize"))
    server, cluster = k.server()
    if cluster is None:
        # kubectl validates against the server's OpenAPI first; that is where it meets a dead server.
        url = f"https://{server}" if server != "localhost:8080" else "http://localhost:8080"
        raise Failure(
            f'error: error validating "{objects[0][0] if objects else "STDIN"}": error validating data: failed to download openapi: Get "{url}/openapi/v2?timeout=32s": dial tcp {server}: connect: connection refused; if you choose to ignore these errors, turn validation off with --validate=false'
        )
    scenario = k.state.scenario()
    if isinstance(scenario.get("apply_error"), str):
        raise Failure(f"error: {scenario['apply_error']}")
    api = k.state.api(cluster["name"])
    errors = []
    now = time.time()
    # kubectl maps every object with the discovery it made at the start (a CRD applied by this
    # same command is not served yet), and goes on with the others (the builder's ContinueOnError)
    custom = custom_kinds(api, scenario, now)
    for source, obj in objects:
        try:
            kind, ns, name = resolve(source, obj, k.namespace, "namespace" in k.opts, custom)
        except Failure as failure:
            if "ensure CRDs are installed first" not in failure.text:
                raise
            errors.append(failure.text)
            continue
        if ns and ns not in namespaces_of(api) and mode["dry_run"] != "client":
            errors.append(
                f'Error from server (NotFound): error when creating "{source}": namespaces "{ns}" not found'
            )
            continue
        applied = copy.deepcopy(obj)
        if ns:
            applied["metadata"]["namespace"] = ns
        refusal = None if mode["dry_run"] == "client" else api_refusal(api, kind, applied)
        if refusal is not None:  # nothing of it is stored; kubectl goes on with the next object
            errors.append(
                (source, kind, ns, name, api["objects"].get(object_key(kind.kind, ns, name)), refusal)
            )
            continue
        last_applied = (
            json.dumps(
                {**applied, "metadata": {"annotations": {}, **applied["metadata"]}},
                sort_keys=True,
                separators=(",", ":"),
            )
            + "\n"
        )
        key = object_key(kind.kind, ns, name)
        record = api["objects"].get(key)
        if record is None and forbidden_error(scenario, "create", kind, ns, source):
            errors.append(forbidden_error(scenario, "create", kind, ns, source))
            continue
        annotations = dict(applied["metadata"].get("annotations") or {})
        # server-side apply keeps managedFields instead; it updates the annotation only where it
        # exists (k8s: apiserver pkg/endpoints/handlers/fieldmanager lastappliedupdater)
        if not mode["server_side"] or (record and last_applied_of(record) is not None):
            annotations["kubectl.kubernetes.io/last-applied-configuration"] = last_applied
        unchanged = record and record.get("config", last_applied_of(record)) == last_applied
        if mode["output"] == "name":
            out(f"{kind.type_name}/{name}")
        elif mode["server_side"]:  # kubectl: apply.go, "serverside-applied" whatever changed
            out(f"{kind.type_name}/{name} serverside-applied{mode['suffix']}")
        elif unchanged:
            out(f"{kind.type_name}/{name} unchanged{mode['suffix']}")
        else:
            out(f"{kind.type_name}/{name} {'configured' if record else 'created'}{mode['suffix']}")
        if unchanged or mode["dry_run"] != "none":
            continue
        api["rv"] += 1
        meta = applied["metadata"]
        meta["annotations"] = annotations
        meta["resourceVersion"] = str(api["rv"])
        meta["creationTimestamp"] = rfc3339(record["created_at"] if record else now)
        meta["uid"] = record["object"]["metadata"]["uid"] if record else uid_of(key, now)
        if kind.group in ("apps", "batch"):
            old = record["object"] if record else None
            meta["generation"] = (
                old["metadata"]["generation"] + (old.get("spec") != applied.get("spec")) if old else 1
            )
        if kind.kind == "Deployment":
            meta["annotations"]["deployment.kubernetes.io/revision"] = str(meta["generation"])
        if kind.kind == "Namespace":
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = name
            applied["spec"] = {"finalizers": ["kubernetes"]}
            applied["status"] = {"phase": "Active"}
        api["objects"][key] = {
            "object": applied,
            "applied_at": now,
            "created_at": record["created_at"] if record else now,
            "config": last_applied,
        }
    k.state.save_api(cluster["name"], api)
    if errors:
        raise Failure(apply_errors_text(errors))
    return 0


def last_applied_of(record: dict) -> str | None:
    return (record["object"]["metadata"].get("annotations") or {}).get(
        "kubectl.kubernetes.io/last-applied-configuration"
    )


def apply_mode(opts: dict) -> dict:
    """kubectl apply's flags: -o name, --server-side [--field-manager] [--force-conflicts],
    --dry-run=none|client|server, --validate (kubectl: pkg/cmd/apply/apply.go, cmd/util
    GetDryRunStrategy and GetValidationDirective)."""
    output = opts.get("output")
    if output not in (None, "name"):
        if output in OUTPUT_FORMATS.split(","):
            raise Failure(f"error: fake kubectl: apply -o {output} is not modelled (only -o name)")
        raise Failure(
            f'error: unable to match a printer suitable for the output format "{output}", allowed formats are: {OUTPUT_FORMATS}'
        )
    dry_run = opts.get("dry-run", "none")
    if dry_run == "unchanged":
        raise Failure(
            "error: fake kubectl: --dry-run without a value (kubectl v1.32 wants --dry-run=none|client|server)"
        )
    if dry_run not in ("none", "client", "server"):
        raise Failure(f'error: Invalid dry-run value ({dry_run}). Must be "none", "server", or "client".')
    validate = opts.get("validate", "strict")
    if validate not in ("strict", "true"):
        raise Failure(
            f"error: fake kubectl: --validate={validate} is not modelled (the fake always validates strictly)"
        )
    server_side = bool(opts.get("server-side"))
    if opts.get("force-conflicts") and not server_side:
        raise Failure("error: --force-conflicts only works with --server-side")
    if opts.get("filename") and opts.get("kustomize"):
        raise Failure("error: only one of -f or -k can be specified")
    suffix = {"none": "", "client": " (dry run)", "server": " (server dry run)"}[dry_run]
    return {"output": output, "dry_run": dry_run, "server_side": server_side, "suffix": suffix}


def api_refusal(api: dict, kind: Kind, obj: dict) -> Any:
    """The API server's answer to an object it is sent (a k8s_validation.APIError or None)."""
    try:  # run as bin/kubectl (tests/fakes on sys.path) or imported as tests.fakes.fake_k8s
        import k8s_validation
    except ImportError:  # pragma: no cover
        from tests.fakes import k8s_validation
    try:
        if kind.kind in KINDS and KINDS[kind.kind].api_version == obj["apiVersion"]:
            return k8s_validation.check(obj, kind.group)
        crd = next(
            (
                r["object"]
                for r in records(api, "CustomResourceDefinition", None)
                if (r["object"].get("spec") or {}).get("group") == kind.group
                and ((r["object"]["spec"].get("names") or {}).get("kind")) == kind.kind
            ),
            None,
        )
        return k8s_validation.check_custom(obj, crd) if crd else None
    except k8s_validation.NotModelled as exc:
        raise Failure(f"error: fake kubectl: {exc}") from None


def apply_errors_text(errors: list) -> str:
    """kubectl apply's errors: one is printed by cmdutil.CheckErr (an Invalid one as "The KIND
    "NAME" is invalid: CAUSE", or with several causes as "* CAUSE" lines), several as an
    aggregate, each "Error from server (REASON): error when creating "SOURCE": MESSAGE".
    kubectl: pkg/cmd/util/helpers.go (checkErr, MultilineError, StandardErrorMessage),
    pkg/cmd/apply/apply.go and patcher.go (AddSourceToErr: "creating", "applying patch")."""
    if len(errors) == 1 and isinstance(errors[0], tuple) and errors[0][-1].reason == "Invalid":
        refusal = errors[0][-1]
        head = f'The {refusal.kind} "{refusal.name}" is invalid: '
        if len(refusal.causes) == 1:
            return head + refusal.causes[0]
        return head + "\n" + "\n".join(f"* {c}" for c in refusal.causes)
    lines = []
    for entry in errors:
        if isinstance(entry, str):
            lines.append(entry)
            continue
        source, kind, ns, name, existing, refusal = entry
        if existing is None:
            where = f'error when creating "{source}"'
        else:  # an update: kubectl patches, and names the patch and its target
            target = (
                f'Resource: "{kind.api_version.rpartition("/")[0] + "/" if kind.group else ""}'
                f'{kind.api_version.rpartition("/")[2]}, Resource={kind.plural}", '
                f'GroupVersionKind: "{kind.api_version}, Kind={kind.kind}"\nName: "{name}", Namespace: "{ns}"'
            )
            where = (
                f"error when applying patch:\n{json.dumps(existing['object'].get('spec'), sort_keys=True)}"
                f'\nto:\n{target}\nfor: "{source}": error when patching "{source}"'
            )
        lines.append(f"Error from server ({refusal.reason}): {where}: {refusal.message}")
    return "\n".join(lines)


def parse_selector(text: str) -> list[tuple[str, str, str]]:
    requirements = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(!?)([\w./-]+)\s*(?:(==|=|!=)\s*([\w.-]*))?\s*", part)
        if not match or (match[1] and match[3]):
            raise Failure(f'error: fake kubectl: unsupported label selector "{text}" (use k=v, k!=v, k, !k)')
        negate, key, op, value = match.groups()
        requirements.append((key, "!" if negate else (op or "exists").replace("==", "="), value or ""))
    return requirements


def selected(labels: dict, requirements: list[tuple[str, str, str]]) -> bool:
    for key, op, value in requirements:
        if (op == "=" and labels.get(key) != value) or (op == "!=" and labels.get(key) == value):
            return False
        if (op == "exists" and key not in labels) or (op == "!" and key in labels):
            return False
    return True


def kubectl_get(k: Kubectl, args: list[str]) -> int:
    if not args:
        raise Failure(
            'error: you must specify the type of resource to get. Use "kubectl api-resources" for a complete list of supported resources.'
        )
    printer = get_printer(k.opts.get("output"))
    scenario = k.state.scenario()
    now = time.time()
    custom: dict[str, Kind] = {}
    if any(name not in GET_TYPES for name in args[0].split(",")):
        try:  # a custom resource type is known only to a live server
            cluster = k.server()[1]
        except Failure:
            cluster = None
        if cluster is not None:
            custom = custom_get_types(k.state.api(cluster["name"]), scenario, now)
    kinds: list[Any] = []
    for name in args[0].split(","):
        if name in custom:
            kinds.append(custom[name])
            continue
        if name not in GET_TYPES:
            raise Failure(
                f'error: fake kubectl: get supports only {sorted(set(GET_TYPES))} and served custom resources, not "{name}"'
            )
        kinds.append(GET_TYPES[name])
    names = args[1:]
    if names and len(kinds) > 1:
        raise Failure("error: you must specify only one resource")
    all_ns = k.opts.get("all-namespaces")
    if names and all_ns:
        raise Failure("error: a resource cannot be retrieved by name across all namespaces")
    requirements = parse_selector(k.opts["selector"]) if k.opts.get("selector") else []
    cluster = k.cluster()
    api = k.state.api(cluster["name"])
    namespace = None if all_ns else k.namespace
    items = []
    for kind in kinds:
        if isinstance(kind, Kind):  # a custom resource, as applied
            found = [
                copy.deepcopy(r["object"])
                for r in records(api, kind.kind, namespace if kind.namespaced else None)
                if r["object"]["apiVersion"].partition("/")[0] == kind.group
            ]
        elif kind == "CustomResourceDefinition":
            found = [crd_with_status(r, scenario, now) for r in records(api, kind, None)]
        elif kind == "Namespace":
            found = namespace_objects(api)
        elif kind == "ConfigMap":  # as applied (a fresh cluster's own ConfigMaps are not modelled)
            found = [
                copy.deepcopy(r["object"])
                for r in sorted(
                    records(api, kind, namespace),
                    key=lambda r: (r["object"]["metadata"]["namespace"], r["object"]["metadata"]["name"]),
                )
            ]
        elif kind == "Pod":
            found = all_pods(api, cluster, scenario, now, namespace)
        elif kind == "Event":
            found = all_events(api, cluster, scenario, now, namespace)
        elif kind == "Service":
            found = [
                service_as_served(r)
                for r in sorted(
                    records(api, kind, namespace),
                    key=lambda r: (r["object"]["metadata"]["namespace"], r["object"]["metadata"]["name"]),
                )
            ]
        elif kind == "ReplicaSet":  # the applied ones and those of the Deployments
            found = sorted(
                [
                    with_status(r, [p for p, _ in workload_pods(r, cluster, scenario, now)], now)
                    for r in records(api, "ReplicaSet", namespace)
                ]
                + [
                    deployment_replicaset(r, [p for p, _ in workload_pods(r, cluster, scenario, now)])
                    for r in records(api, "Deployment", namespace)
                ],
                key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"]),
            )
        else:
            found = [
                with_status(r, [p for p, _ in workload_pods(r, cluster, scenario, now)], now)
                for r in sorted(
                    records(api, kind, namespace),
                    key=lambda r: (r["object"]["metadata"]["namespace"], r["object"]["metadata"]["name"]),
                )
            ]
        items.extend(o for o in found if selected(o["metadata"].get("labels") or {}, requirements))
    if names:
        by_name = {o["metadata"]["name"]: o for o in items}
        missing = [n for n in names if n not in by_name]
        if missing and k.opts.get("ignore-not-found"):
            names = [n for n in names if n in by_name]  # kubectl prints nothing for the missing
            if not names:
                return 0
        elif missing:
            first = kinds[0]
            resource = (
                first.resource
                if isinstance(first, Kind)
                else KINDS[first].resource
                if first in KINDS
                else "events"
            )
            raise Failure(
                "\n".join(f'Error from server (NotFound): {resource} "{n}" not found' for n in missing)
            )
        items = [by_name[n] for n in names]
        if len(items) == 1:
            printer(items[0], [items[0]])
            return 0
    printer({"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}, items)
    return 0


def type_name_of(obj: dict) -> str:
    """kubectl's name printer: kind.group/name (core kinds without the group)."""
    group = obj["apiVersion"].rpartition("/")[0]
    return f"{obj['kind'].lower()}{'.' + group if group else ''}/{obj['metadata']['name']}"


def get_printer(output: str | None):
    """-o json (a v1 List, keys sorted, 4-space indent), yaml (sigs.k8s.io/yaml: keys sorted, lists
    not indented), name, jsonpath=TEMPLATE (a subset: {.a.b}, {.items[*].x}, {.a[0]}, literal text).
    kubectl: cli-runtime pkg/printers (json.go, yaml.go, name.go, jsonpath.go)."""
    if output == "json":
        return lambda whole, items: out(json.dumps(whole, indent=4, sort_keys=True))
    if output == "yaml":
        return lambda whole, items: sys.stdout.write(
            yaml.safe_dump(whole, sort_keys=True, default_flow_style=False, allow_unicode=True)
        )
    if output == "name":
        return lambda whole, items: [out(type_name_of(o)) for o in items]
    if output and output.startswith("jsonpath="):
        template = output.removeprefix("jsonpath=")
        jsonpath(template, {})  # refuses what it does not model before any request
        return lambda whole, items: sys.stdout.write(jsonpath(template, whole))
    if (
        output is None
        or output in OUTPUT_FORMATS.split(",")
        or output.startswith(("custom-columns=", "go-template="))
    ):
        raise Failure(
            f"error: fake kubectl: `kubectl get` supports -o json|yaml|name|jsonpath=..., not {output or 'its table'}"
        )
    raise Failure(
        f'error: unable to match a printer suitable for the output format "{output}", allowed formats are: {OUTPUT_FORMATS}'
    )


def jsonpath(template: str, data: Any) -> str:
    """k8s.io/client-go/util/jsonpath for simple paths: results of one {…} joined by spaces,
    strings as they are, other values as JSON."""
    parts = re.split(r"(\{[^{}]*\})", template)
    text = []
    for part in parts:
        if not (part.startswith("{") and part.endswith("}")):
            text.append(part.replace("\\n", "\n").replace("\\t", "\t"))
            continue
        expr = part[1:-1].strip()
        if expr == "":
            continue
        if not re.fullmatch(r"(\.[\w./-]*|\[(\*|\d+)\])+", expr.removeprefix("$")):
            raise Failure(f"error: fake kubectl: jsonpath {part} is not modelled (only .field, [n] and [*])")
        values = [data]
        for field_name, index in re.findall(r"\.([\w/-]*)|\[(\*|\d+)\]", expr.removeprefix("$")):
            step = []
            for value in values:
                if index == "*":
                    step.extend(
                        value
                        if isinstance(value, list)
                        else list(value.values())
                        if isinstance(value, dict)
                        else []
                    )
                elif index:
                    if isinstance(value, list) and int(index) < len(value):
                        step.append(value[int(index)])
                    else:
                        raise Failure(
                            "error: error executing jsonpath "
                            + json.dumps(template)
                            + ": array index out of bounds: index "
                            + index
                        )
                elif field_name == "":
                    step.append(value)
                elif isinstance(value, dict) and field_name in value:
                    step.append(value[field_name])
            values = step
        text.append(" ".join(v if isinstance(v, str) else json.dumps(v) for v in values))
    return "".join(text)


def namespace_objects(api: dict) -> list[dict]:
    """Every namespace: kind's own (as a fresh kind v0.27 node has them) and the applied ones."""
    applied = {
        r["object"]["metadata"]["name"]: copy.deepcopy(r["object"]) for r in records(api, "Namespace", None)
    }
    for name in SYSTEM_NAMESPACES:
        applied.setdefault(
            name,
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"labels": {"kubernetes.io/metadata.name": name}, "name": name},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            },
        )
    return [applied[name] for name in sorted(applied)]


def find_pod(k: Kubectl, name: str) -> tuple[dict, dict, list[dict]]:
    cluster = k.cluster()
    api = k.state.api(cluster["name"])
    for pod, events in all_pods_with_events(api, cluster, k.state.scenario(), time.time(), k.namespace):
        if pod["metadata"]["name"] == name:
            return cluster, pod, events
    raise Failure(f'Error from server (NotFound): pods "{name}" not found')


def log_text(scenario: dict, container: str, previous: bool) -> str:
    logs = scenario.get("logs") or {}
    text = logs.get(f"{container}:previous" if previous else container, f"{container} started")
    return text if text.endswith("\n") or not text else text + "\n"


def kubectl_logs(k: Kubectl, args: list[str]) -> int:
    if len(args) != 1:
        raise Failure(
            "error: expected 'logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]'.\nPOD or TYPE/NAME is a required argument for the logs command\nSee 'kubectl logs -h' for help and examples"
        )
    name = args[0].removeprefix("pod/").removeprefix("pods/")
    if "/" in name:
        raise Failure(f"error: fake kubectl: logs supports POD or pod/POD, not {args[0]}")
    tail = k.opts.get("tail", "-1")
    if not re.fullmatch(r"-?\d+", tail):
        raise Failure(
            f'error: invalid argument "{tail}" for "--tail" flag: strconv.ParseInt: parsing "{tail}": invalid syntax'
        )
    _, pod, _ = find_pod(k, name)
    spec = pod["spec"]
    container = k.opts.get("container")
    if container is None:
        container = spec["containers"][0]["name"]
        if len(spec["containers"]) > 1 or spec.get("initContainers"):
            all_names = [c["name"] for c in spec.get("initContainers", []) + spec["containers"]]
            err(
                f'Defaulted container "{container}" out of: {", ".join(all_names)}'
            )  # kubectl: polymorphichelpers
    statuses = {
        s["name"]: s
        for s in pod["status"].get("initContainerStatuses", []) + pod["status"].get("containerStatuses", [])
    }
    if container not in {c["name"] for c in spec.get("initContainers", []) + spec["containers"]}:
        raise Failure(f"error: container {container} is not valid for pod {name}")
    if not pod["spec"].get("nodeName"):
        return 0  # k8s: no host assigned yet, so an empty log
    status = statuses[container]
    previous = bool(k.opts.get("previous"))
    # k8s: pkg/kubelet/kubelet_pods.go validateContainerLogStatus
    if previous and not status["lastState"]:
        raise Failure(
            f'Error from server (BadRequest): previous terminated container "{container}" in pod "{name}" not found'
        )
    waiting = status["state"].get("waiting")
    if waiting and not status["lastState"]:
        reason = {
            "ErrImagePull": "image can't be pulled",
            "ImagePullBackOff": "trying and failing to pull image",
        }.get(waiting["reason"], waiting["reason"])
        raise Failure(
            f'Error from server (BadRequest): container "{container}" in pod "{name}" is waiting to start: {reason}'
        )
    text = log_text(k.state.scenario(), container, previous or bool(waiting))
    lines = text.splitlines(keepends=True)
    if int(tail) >= 0:
        lines = lines[len(lines) - int(tail) :] if int(tail) else []
    sys.stdout.write("".join(lines))
    sys.stdout.flush()
    return 0


def kubectl_delete(k: Kubectl, args: list[str]) -> int:
    files = k.opts.get("filename")
    if files and args:
        raise Failure(
            "error: there is no need to specify a resource type as a separate argument when passing arguments in resource/name form"
        )
    if files:
        targets = []
        custom = custom_kinds(k.state.api(k.cluster()["name"]), k.state.scenario(), None)
        for source, obj in load_manifests(files):
            kind, ns, name = resolve(source, obj, k.namespace, "namespace" in k.opts, custom)
            targets.append((f'error when deleting "{source}": ', kind, ns, name))
    elif len(args) >= 2 and args[0] in ("namespace", "namespaces", "ns"):
        targets = [("", KINDS["Namespace"], "", n) for n in args[1:]]
    elif args and (args[0] in ("pod", "pods", "po") or args[0].startswith(("pod/", "pods/"))):
        names = args[1:] if args[0] in ("pod", "pods", "po") else [a.split("/", 1)[1] for a in args]
        return delete_pods(k, names)
    else:
        raise Failure("error: fake kubectl: delete supports -f FILE, `namespace NAME...` and `pod NAME...`")
    cluster = k.cluster()
    api = k.state.api(cluster["name"])
    errors = []
    scenario = k.state.scenario()
    now = time.time()
    existed = set(api["objects"])  # what a namespace deleted earlier in this command takes along still counts
    for prefix, kind, ns, name in targets:
        key = object_key(kind.kind, ns, name)
        if kind.kind == "Namespace" and name in ("default", "kube-public", "kube-system"):
            errors.append(
                f'Error from server (Forbidden): {prefix}namespaces "{name}" is forbidden: this namespace may not be deleted'
            )
            continue
        if key not in existed:
            if not k.opts.get("ignore-not-found"):
                errors.append(f'Error from server (NotFound): {prefix}{kind.resource} "{name}" not found')
            continue
        if kind.kind == "Namespace":  # takes its objects and their events along
            api["events"] = [e for e in api["events"] if e["metadata"]["namespace"] != name]
            api["objects"] = {
                n: r for n, r in api["objects"].items() if r["object"]["metadata"].get("namespace") != name
            }
        elif key in api["objects"]:
            remember_events(api, api["objects"][key], cluster, scenario, now)
        api["objects"].pop(key, None)
        out(f'{kind.type_name} "{name}" deleted')  # kubectl: pkg/cmd/delete/delete.go PrintObj
    k.state.save_api(cluster["name"], api)
    if errors:
        raise Failure("\n".join(errors))
    return 0


def delete_pods(k: Kubectl, names: list[str]) -> int:
    """`kubectl delete pod NAME... [-n NS]`: a controlled pod is replaced (see workload_pods);
    a bare Pod is gone."""
    cluster = k.cluster()
    api = k.state.api(cluster["name"])
    scenario = k.state.scenario()
    now = time.time()
    errors = []
    for wanted in names:
        found = False
        for key, record in list(api["objects"].items()):
            if record["object"]["kind"] not in WORKLOAD_KINDS:
                continue
            if record["object"]["metadata"].get("namespace") != k.namespace:
                continue
            for index, (pod, _) in enumerate(workload_pods(record, cluster, scenario, now)):
                if pod["metadata"]["name"] != wanted:
                    continue
                found = True
                if record["object"]["kind"] == "Pod":
                    api["objects"].pop(key)
                else:
                    replaced = record.setdefault("replaced", {})
                    generation = replaced.get(str(index), [0, None])[0] + 1
                    replaced[str(index)] = [generation, now]
                out(f'pod "{wanted}" deleted')  # kubectl: pkg/cmd/delete/delete.go PrintObj
                break
            if found:
                break
        if not found:
            errors.append(f'Error from server (NotFound): pods "{wanted}" not found')
    k.state.save_api(cluster["name"], api)
    if errors:
        raise Failure("\n".join(errors))
    return 0


def remember_events(api: dict, record: dict, cluster: dict, scenario: dict, now: float) -> None:
    """Events outlive their objects: keep a workload's events, plus the kubelet's Killing ones."""
    if record["object"]["kind"] not in WORKLOAD_KINDS:
        return
    pods = workload_pods(record, cluster, scenario, now)
    api["events"].extend(workload_events(record, [p for p, _ in pods]))
    for pod, events in pods:
        api["events"].extend(events)
        for status in pod["status"].get("containerStatuses", []):
            if "running" in status["state"]:
                api["events"].append(
                    event(
                        involved_of(pod),
                        "Killing",
                        f"Stopping container {status['name']}",
                        now,
                        host=cluster["node"],
                        field_path=f"spec.containers{{{status['name']}}}",
                    )
                )


# -- kubectl describe --------------------------------------------------------------------------------


def tabwrite(text: str, padding: int = 2) -> str:
    """Go's text/tabwriter as kubectl describe uses it: tab-terminated cells aligned per column block."""
    rows = [line.split("\t") for line in text.split("\n")]
    widths: list[list[int]] = [[0] * (len(r) - 1) for r in rows]

    def align(start: int, end: int, column: int) -> None:
        i = start
        while i < end:
            if len(rows[i]) - 1 <= column:
                i += 1
                continue
            j = i
            while j < end and len(rows[j]) - 1 > column:
                j += 1
            width = max(len(rows[r][column]) for r in range(i, j)) + padding
            for r in range(i, j):
                widths[r][column] = width
            align(i, j, column + 1)
            i = j

    align(0, len(rows), 0)
    return "\n".join(
        "".join(c.ljust(w) for c, w in zip(r, widths[n], strict=False)) + r[-1] for n, r in enumerate(rows)
    )


def describe_time(value: str) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.strptime(value, "%Y-%m-%dT%H:%M:%SZ"))


def describe_state(label: str, state: dict, indent: str) -> list[str]:
    if "running" in state:
        return [
            f"{indent}{label}:\tRunning",
            f"{indent}  Started:\t{describe_time(state['running']['startedAt'])}",
        ]
    if "waiting" in state:
        return [f"{indent}{label}:\tWaiting", f"{indent}  Reason:\t{state['waiting']['reason']}"]
    done = state["terminated"]
    return [
        f"{indent}{label}:\tTerminated",
        f"{indent}  Reason:\t{done['reason']}",
        f"{indent}  Exit Code:\t{done['exitCode']}",
        f"{indent}  Started:\t{describe_time(done['startedAt'])}",
        f"{indent}  Finished:\t{describe_time(done['finishedAt'])}",
    ]


def describe_probe(probe: dict) -> str:
    if "httpGet" in probe:
        action = f"http-get http://:{probe['httpGet'].get('port')}{probe['httpGet'].get('path', '/')}"
    elif "tcpSocket" in probe:
        action = f"tcp-socket :{probe['tcpSocket'].get('port')}"
    else:
        action = f"exec [{' '.join(probe.get('exec', {}).get('command', []))}]"
    return (
        f"{action} delay={probe.get('initialDelaySeconds', 0)}s timeout={probe.get('timeoutSeconds', 1)}s "
        f"period={probe.get('periodSeconds', 10)}s #success={probe.get('successThreshold', 1)} #failure={probe.get('failureThreshold', 3)}"
    )


def describe_containers(title: str, specs: list[dict], statuses: list[dict]) -> list[str]:
    lines = [f"{title}:"]
    by_name = {s["name"]: s for s in statuses}
    for container in specs:
        status = by_name.get(container["name"])
        ports = [f"{p['containerPort']}/{p['protocol']}" for p in container.get("ports") or []]
        host_ports = [f"0/{p['protocol']}" for p in container.get("ports") or []]
        lines += [
            f"  {container['name']}:",
            f"    Container ID:\t{(status or {}).get('containerID', '')}",
            f"    Image:\t{container.get('image', '')}",
            f"    Image ID:\t{(status or {}).get('imageID', '')}",
            f"    Port:\t{', '.join(ports) or '<none>'}",
            f"    Host Port:\t{', '.join(host_ports) or '<none>'}",
        ]
        if status:
            lines += describe_state("State", status["state"], "    ")
            if status["lastState"]:
                lines += describe_state("Last State", status["lastState"], "    ")
            lines += [f"    Ready:\t{status['ready']}", f"    Restart Count:\t{status['restartCount']}"]
        for kind in ("liveness", "readiness", "startup"):
            if container.get(f"{kind}Probe"):
                lines.append(f"    {kind.capitalize()}:\t{describe_probe(container[f'{kind}Probe'])}")
        env = container.get("env") or []
        lines.append("    Environment:" + ("" if env else "\t<none>"))
        lines += [f"      {e['name']}:\t{e.get('value', '<set by valueFrom>')}" for e in env]
        lines.append("    Mounts:")
        lines += [
            f"      {m['mountPath']} from {m['name']} ({'ro' if m.get('readOnly') else 'rw'})"
            for m in container.get("volumeMounts", [])
        ]
    return lines


def describe_pod(pod: dict, events: list[dict], now: float) -> str:
    """kubectl: pkg/describe/describe.go (PodDescriber): the common fields, not every one."""
    meta, spec, status = pod["metadata"], pod["spec"], pod["status"]
    labels = [f"{k}={v}" for k, v in sorted((meta.get("labels") or {}).items())] or ["<none>"]
    node = f"{spec['nodeName']}/{status.get('hostIP', '')}" if spec.get("nodeName") else "<none>"
    lines = [
        f"Name:\t{meta['name']}",
        f"Namespace:\t{meta['namespace']}",
        f"Priority:\t{spec.get('priority', 0)}",
        f"Service Account:\t{spec.get('serviceAccountName', 'default')}",
        f"Node:\t{node}",
    ]
    if status.get("startTime"):
        lines.append(f"Start Time:\t{describe_time(status['startTime'])}")
    lines.append(f"Labels:\t{labels[0]}")
    lines += [f"\t{label}" for label in labels[1:]]
    lines += [
        "Annotations:\t"
        + ("\n\t".join(f"{k}: {v}" for k, v in sorted((meta.get("annotations") or {}).items())) or "<none>"),
        f"Status:\t{status['phase']}",
        f"IP:\t{status.get('podIP', '')}",
    ]
    lines += ["IPs:", f"  IP:\t{status['podIP']}"] if status.get("podIP") else ["IPs:\t<none>"]
    owner = next((o for o in meta.get("ownerReferences", []) if o.get("controller")), None)
    if owner:
        lines.append(f"Controlled By:\t{owner['kind']}/{owner['name']}")
    if spec.get("initContainers"):
        lines += describe_containers(
            "Init Containers", spec["initContainers"], status.get("initContainerStatuses", [])
        )
    lines += describe_containers("Containers", spec["containers"], status.get("containerStatuses", []))
    lines += ["Conditions:", "  Type\tStatus"]
    lines += [f"  {c['type']} \t{c['status']} " for c in status.get("conditions", [])]
    lines.append("Volumes:")
    for volume in spec.get("volumes", []):
        lines.append(f"  {volume['name']}:")
        if "projected" in volume:
            lines += [
                "    Type:\tProjected (a volume that contains injected data from multiple sources)",
                "    TokenExpirationSeconds:\t3607",
                "    ConfigMapName:\tkube-root-ca.crt",
                "    ConfigMapOptional:\t<nil>",
                "    DownwardAPI:\ttrue",
            ]
        else:
            lines.append(f"    Type:\t{next(iter(k for k in volume if k != 'name'), 'unknown')}")
    lines += [
        f"QoS Class:\t{status['qosClass']}",
        "Node-Selectors:\t<none>",
        "Tolerations:\tnode.kubernetes.io/not-ready:NoExecute op=Exists for 300s",
        "\tnode.kubernetes.io/unreachable:NoExecute op=Exists for 300s",
    ]
    if not events:
        lines.append("Events:\t<none>")
    else:
        lines += ["Events:", "  Type\tReason\tAge\tFrom\tMessage", "  ----\t------\t----\t----\t-------"]
        for e in sorted(events, key=lambda e: e["lastTimestamp"] or e["eventTime"]):
            last = e["lastTimestamp"] or e["eventTime"][:19] + "Z"
            age = human_duration(now - to_epoch(last))
            if e.get("count", 1) > 1:
                age = f"{age} (x{e['count']} over {human_duration(now - to_epoch(e['firstTimestamp']))})"
            source = e["source"].get("component") or e["reportingComponent"]
            lines.append(f"  {e['type']}\t{e['reason']}\t{age}\t{source}\t{e['message']}")
    return tabwrite("\n".join(lines)) + "\n"


def to_epoch(value: str) -> float:
    return calendar.timegm(time.strptime(value, "%Y-%m-%dT%H:%M:%SZ"))


def kubectl_describe(k: Kubectl, args: list[str]) -> int:
    if not args or args[0] not in ("pods", "pod", "po"):
        raise Failure("error: fake kubectl: only `kubectl describe pods [NAME]` is supported")
    cluster = k.cluster()
    now = time.time()
    pods = all_pods_with_events(k.state.api(cluster["name"]), cluster, k.state.scenario(), now, k.namespace)
    if len(args) > 1:
        # kubectl describe falls back to a name prefix when no pod has the exact name.
        exact = [p for p in pods if p[0]["metadata"]["name"] in args[1:]]
        pods = exact or [p for p in pods if any(p[0]["metadata"]["name"].startswith(a) for a in args[1:])]
        if not pods:
            raise Failure(f'Error from server (NotFound): pods "{args[1]}" not found')
    if not pods:
        err(f"No resources found in {k.namespace} namespace.")
        return 0
    sys.stdout.write("\n\n".join(describe_pod(pod, events, now) for pod, events in pods))
    sys.stdout.flush()
    return 0


# -- kubectl port-forward ------------------------------------------------------------------------------


def kubectl_port_forward(k: Kubectl, args: list[str]) -> int:
    signal.signal(signal.SIGTERM, interrupt)  # kubectl: stops on SIGINT and SIGTERM, exit 0
    if len(args) < 2:
        raise Failure(
            "error: TYPE/NAME and list of ports are required for port-forward\nSee 'kubectl port-forward -h' for help and examples"
        )
    addresses = k.opts.get("address") or ["localhost"]
    if len(addresses) > 1:
        raise Failure("error: fake kubectl: port-forward supports one --address")
    address = addresses[0]
    if address not in ("localhost", "127.0.0.1"):
        raise Failure(f"error: fake kubectl: --address must be localhost or 127.0.0.1, not {address}")
    kind, _, name = args[0].rpartition("/")
    kind = {
        "": "pod",
        "pod": "pod",
        "pods": "pod",
        "po": "pod",
        "service": "service",
        "services": "service",
        "svc": "service",
        "deployment": "deployment",
        "deployments": "deployment",
        "deploy": "deployment",
        "deployment.apps": "deployment",
        "statefulset": "statefulset",
        "statefulsets": "statefulset",
        "sts": "statefulset",
        "statefulset.apps": "statefulset",
    }.get(kind)
    if kind is None:
        raise Failure(
            "error: fake kubectl: port-forward supports pod/NAME, service/NAME, deployment/NAME and "
            f"statefulset/NAME, not {args[0]}"
        )
    with k.state.lock():
        cluster = k.cluster()
        api = k.state.api(cluster["name"])
        scenario = k.state.scenario()
        pods = all_pods(api, cluster, scenario, time.time(), k.namespace)
        service = None
        if kind == "service":
            record = api["objects"].get(object_key("Service", k.namespace, name))
            if record is None:
                raise Failure(f'Error from server (NotFound): services "{name}" not found')
            service = record["object"]
            selector = list((service.get("spec", {}).get("selector") or {}).items())
            pods = [
                p
                for p in pods
                if selector
                and selected(p["metadata"].get("labels") or {}, [(key, "=", v) for key, v in selector])
            ]
            if not pods:
                raise Failure("error: timed out waiting for the condition")
        elif kind in ("deployment", "statefulset"):
            # kubectl: polymorphichelpers.AttachablePodForObjectFn — the workload's selector, the
            # pods it selects sorted as ActivePods (a running, ready pod first); none: the wait
            # for one (--pod-running-timeout) ends in a timeout.
            api_kind = {"deployment": "Deployment", "statefulset": "StatefulSet"}[kind]
            record = api["objects"].get(object_key(api_kind, k.namespace, name))
            if record is None:
                raise Failure(f'Error from server (NotFound): {kind}s.apps "{name}" not found')
            selector = (record["object"].get("spec") or {}).get("selector") or {}
            if selector.get("matchExpressions"):
                raise Failure(
                    "error: fake kubectl: port-forward to a workload with matchExpressions is not modelled"
                )
            wanted = [(key, "=", str(v)) for key, v in (selector.get("matchLabels") or {}).items()]
            pods = sorted(
                (p for p in pods if selected(p["metadata"].get("labels") or {}, wanted)),
                key=lambda p: p["status"]["phase"] != "Running",
            )
            if not pods:
                raise Failure("error: timed out waiting for the condition")
        else:
            pods = [p for p in pods if p["metadata"]["name"] == name]
            if not pods:
                raise Failure(f'Error from server (NotFound): pods "{name}" not found')
    pod = pods[0]
    if pod["status"]["phase"] != "Running":  # kubectl: pkg/cmd/portforward/portforward.go
        raise Failure(
            f"error: unable to forward port because pod is not running. Current status={pod['status']['phase']}"
        )
    target = (scenario.get("port_forward") or {}).get(f"{kind}/{name}")
    listeners = []
    for spec in args[1:]:
        local, _, remote = spec.rpartition(":") if ":" in spec else (spec, "", spec)
        if not remote:
            raise Failure("error: remote port cannot be empty")
        if not remote.isdigit() and service is None:  # kubectl: convertPodNamedPortToNumber
            remote = str(container_port_named(pod, remote))
        if not remote.isdigit() or (local and not local.isdigit()):
            raise Failure(
                f"error: fake kubectl: port spec must be [LOCAL]:REMOTE with numbers (a name for a pod's port), not {spec}"
            )
        container_port = service_target_port(service, pod, int(remote)) if service else int(remote)
        listeners.extend(listen(address, int(local) if local else 0, container_port))
    try:  # from here on, kubectl stops on SIGINT and SIGTERM and exits 0
        for sock, host, port, remote_port in listeners:  # client-go: tools/portforward/portforward.go
            threading.Thread(
                target=accept_loop, args=(sock, port, remote_port, target, pod), daemon=True
            ).start()
            out(f"Forwarding from {host}:{port} -> {remote_port}")
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0


def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def service_target_port(service: dict, pod: dict, port: int) -> int:
    """kubectl: the service port translated to the pod's container port (targetPort, by number or name)."""
    for entry in service.get("spec", {}).get("ports", []):
        if entry.get("port") != port:
            continue
        target = entry.get("targetPort", port)
        if isinstance(target, int):
            return target
        return container_port_named(pod, target)
    raise Failure(f"error: service {service['metadata']['name']} does not have a service port {port}")


def container_port_named(pod: dict, name: str) -> int:
    """kubectl: util.LookupContainerPortNumberByName."""
    for container in pod["spec"]["containers"]:
        for declared in container.get("ports", []):
            if declared.get("name") == name:
                return declared["containerPort"]
    raise Failure(f"error: Pod '{pod['metadata']['name']}' does not have a named port '{name}'")


def listen(address: str, port: int, remote: int) -> list[tuple[socket.socket, str, int, int]]:
    hosts = [("127.0.0.1", socket.AF_INET)] + ([("::1", socket.AF_INET6)] if address == "localhost" else [])
    listeners = []
    for host, family in hosts:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            if family == socket.AF_INET6:
                continue  # no IPv6 here: kubectl then forwards on 127.0.0.1 only
            raise Failure(
                f"Unable to listen on port {port}: Listeners failed to create with the following errors: [unable to create listener: Error listen tcp4 127.0.0.1:{port}: bind: {exc.strerror.lower()}]\nerror: unable to listen on any of the requested ports: [{{{port} {remote}}}]"
            ) from None
        sock.listen(16)
        port = sock.getsockname()[1]
        listeners.append((sock, f"[{host}]" if family == socket.AF_INET6 else host, port, remote))
    return listeners


def accept_loop(sock: socket.socket, local: int, remote: int, target: str | None, pod: dict) -> None:
    while True:
        conn, _ = sock.accept()
        out(f"Handling connection for {local}")
        threading.Thread(target=proxy, args=(conn, local, remote, target, pod), daemon=True).start()


def proxy(conn: socket.socket, local: int, remote: int, target: str | None, pod: dict) -> None:
    try:
        host, _, port = (target or "").rpartition(":")
        upstream = socket.create_connection((host, int(port)), timeout=5) if target else None
    except OSError:
        upstream = None
    if upstream is None:
        now = time.time()
        err(
            f"E{time.strftime('%m%d %H:%M:%S', time.localtime(now))}.{int(now % 1 * 1e6):06d} {os.getpid():7d} portforward.go:424] "
            f'"Unhandled Error" err="an error occurred forwarding {local} -> {remote}: error forwarding port {remote} to pod '
            f'{pod["metadata"]["uid"]}, uid : failed to connect to localhost:{remote} inside namespace: dial tcp4 127.0.0.1:{remote}: connect: connection refused"'
        )
        conn.close()
        return
    upstream.settimeout(None)

    def pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    threading.Thread(target=pipe, args=(upstream, conn), daemon=True).start()
    pipe(conn, upstream)
