"""One probe run (httpGet, tcpSocket, exec) and its failure worded like the kubelet's prober.

The kubelet probes the pod IP; so does the docker target, at the container's address on the
target's network, when this machine can reach that network (a local Linux engine). Where it
cannot (an engine in a VM), it probes the port published on 127.0.0.1 instead. Either way the
message names the address actually probed and the error actually met, in Go's wording:
``Get "http://172.18.0.5:8080/healthz": dial tcp 172.18.0.5:8080: connect: connection refused``.
"""

from __future__ import annotations

import errno
import http.client
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PROBE_DEFAULTS = {
    "initialDelaySeconds": 0.0,
    "periodSeconds": 10.0,
    "timeoutSeconds": 1.0,
    "successThreshold": 1,
    "failureThreshold": 3,
}
PROBE_NAMES = {"startupProbe": "Startup", "readinessProbe": "Readiness", "livenessProbe": "Liveness"}


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    message: str = ""  # the kubelet's event text after "<Kind> probe failed: "


def setting(probe: dict[str, Any], key: str) -> float:
    return float(probe.get(key, PROBE_DEFAULTS[key]))


def run_probe(
    probe: dict[str, Any],
    address: tuple[str, int] | None,
    exec_in_container: Callable[[list[str]], tuple[bool, str]],
) -> ProbeResult:
    """Run ``probe`` once against ``address`` (host, port), or inside the container for exec."""
    timeout = setting(probe, "timeoutSeconds")
    if "exec" in probe:
        ok, output = exec_in_container([str(a) for a in probe["exec"].get("command") or []])
        return ProbeResult(ok, "" if ok else output.strip())
    action = probe.get("httpGet") or probe.get("tcpSocket") or {}
    if address is None:
        return ProbeResult(
            False, f"the docker target cannot reach port {action.get('port')} of the container"
        )
    host, port = address
    if "tcpSocket" in probe:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return ProbeResult(True)
        except OSError as exc:
            return ProbeResult(False, f"dial tcp {host}:{port}: {_go_error(exc)}")
    path = str(action.get("path") or "/")
    url = f"{str(action.get('scheme', 'HTTP')).lower()}://{host}:{port}{path}"
    headers = {str(h.get("name")): str(h.get("value")) for h in action.get("httpHeaders") or []}
    headers.setdefault("User-Agent", "kube-probe/1.32")
    connection_type = http.client.HTTPSConnection if url.startswith("https") else http.client.HTTPConnection
    connection = connection_type(host, port, timeout=timeout)
    try:
        try:
            connection.connect()
        except OSError as exc:
            return ProbeResult(False, f'Get "{url}": dial tcp {host}:{port}: {_go_error(exc)}')
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        if 200 <= response.status < 400:
            return ProbeResult(True)
        return ProbeResult(False, f"HTTP probe failed with statuscode: {response.status}")
    except TimeoutError:
        return ProbeResult(
            False, f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
        )
    except (OSError, http.client.HTTPException) as exc:
        return ProbeResult(False, f'Get "{url}": {_go_error(exc)}')
    finally:
        connection.close()


def _go_error(exc: BaseException) -> str:
    """Python's socket errors in the words of Go's net package."""
    if isinstance(exc, TimeoutError | socket.timeout):
        return "i/o timeout"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "EOF"
    code = getattr(exc, "errno", None)
    words = {
        errno.ECONNREFUSED: "connect: connection refused",
        errno.EHOSTUNREACH: "connect: no route to host",
        errno.ENETUNREACH: "connect: network is unreachable",
        errno.ECONNRESET: "read: connection reset by peer",
    }
    if code in words:
        return words[code]
    return str(getattr(exc, "strerror", None) or exc).lower() or type(exc).__name__
