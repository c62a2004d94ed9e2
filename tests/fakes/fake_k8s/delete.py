"""``kubectl delete``: objects from files, namespaces with what is in them, and pods (a
controlled pod is replaced); events outlive what they are about."""

from __future__ import annotations

import time

from .crds import custom_kinds
from .events import event, involved_of, workload_events
from .kubectl import Kubectl
from .manifests import load_manifests, resolve
from .objects import KINDS, WORKLOAD_KINDS, object_key
from .output import Failure, out
from .timelines import workload_pods


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
