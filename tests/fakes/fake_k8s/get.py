"""``kubectl get``: the objects as the API server serves them, printed as ``-o json``, ``yaml``,
``name`` or ``jsonpath=…``."""

from __future__ import annotations

import copy
import json
import re
import sys
import time
from typing import Any

import yaml

from .crds import crd_with_status, custom_get_types
from .kubectl import OUTPUT_FORMATS, Kubectl
from .objects import GET_TYPES, KINDS, SYSTEM_NAMESPACES, Kind, parse_selector, records, selected
from .output import Failure, out
from .status import deployment_replicaset, service_as_served, with_status
from .timelines import all_events, all_pods, workload_pods


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
