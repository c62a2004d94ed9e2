"""The fake ``kubectl`` CLI: the global flags and each command's, the kubeconfig's cluster
(:class:`Kubectl`), ``version`` and ``config``; each other verb is a module of its own
(:mod:`.apply`, :mod:`.get`, :mod:`.describe`, :mod:`.logs`, :mod:`.delete`,
:mod:`.port_forward`), imported when it runs."""

from __future__ import annotations

import importlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .cli import Opt, parse_flags
from .formats import parse_go_duration
from .output import Failure, out
from .state import State


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
        from .manifests import kubectl_kustomize

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
        return verb(command)(k, args)
    if command == "config":
        return kubectl_config(k, args)
    run = verb(command)
    with state.lock():
        return run(k, args)


def verb(command: str) -> Callable[[Kubectl, list[str]], int]:
    """``kubectl_<verb>`` of the verb's own module (apply, get, describe, logs, delete,
    port_forward), imported only now: one call runs one verb, and the fakes run thousands of
    times in a test run."""
    name = command.replace("-", "_")
    return getattr(importlib.import_module(f".{name}", __package__), f"kubectl_{name}")


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
