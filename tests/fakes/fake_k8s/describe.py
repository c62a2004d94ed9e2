"""``kubectl describe pods``: the common fields of kubectl's PodDescriber, aligned as Go's
tabwriter aligns them."""

from __future__ import annotations

import sys
import time

from .formats import human_duration, to_epoch
from .kubectl import Kubectl
from .output import Failure, err
from .timelines import all_pods_with_events


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
