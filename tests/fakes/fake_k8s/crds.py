"""CustomResourceDefinitions: their status as the API server reports it, and the custom kinds
they make the server serve once Established (after the scenario's delay, if any)."""

from __future__ import annotations

import copy

from .formats import rfc3339
from .objects import Kind, records
from .output import Failure

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
