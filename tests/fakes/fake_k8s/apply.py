"""``kubectl apply``: the objects stored with their apply times, as kubectl prints and the API
server refuses them (:mod:`.validation`, RBAC from the scenario)."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

from . import validation
from .crds import custom_kinds
from .formats import rfc3339, uid_of
from .kubectl import OUTPUT_FORMATS, Kubectl
from .manifests import load_manifests, resolve
from .objects import KINDS, Kind, namespaces_of, object_key, records
from .output import Failure, out


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
    """The API server's answer to an object it is sent (a validation.APIError or None)."""
    try:
        if kind.kind in KINDS and KINDS[kind.kind].api_version == obj["apiVersion"]:
            return validation.check(obj, kind.group)
        crd = next(
            (
                r["object"]
                for r in records(api, "CustomResourceDefinition", None)
                if (r["object"].get("spec") or {}).get("group") == kind.group
                and ((r["object"]["spec"].get("names") or {}).get("kind")) == kind.kind
            ),
            None,
        )
        return validation.check_custom(obj, crd) if crd else None
    except validation.NotModelled as exc:
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
