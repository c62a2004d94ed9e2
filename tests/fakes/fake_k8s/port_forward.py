"""``kubectl port-forward``: listens as kubectl does and forwards each connection to the
scenario's address for the target (or refuses it as kubectl does when the pod's port is closed)."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from contextlib import suppress

from .kubectl import Kubectl
from .objects import object_key, selected
from .output import Failure, err, out
from .timelines import all_pods


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
