"""What the fake API server refuses of an applied object, as a v1.32 kube-apiserver does.

Three stages, in the API server's order (each stops the object at its first failing stage):

1. Decoding (400 BadRequest). The object is walked along the Kubernetes OpenAPI schema that the
   ``kubernetes-validate`` package ships (its strict v1.32 schemas, the version the fake kubectl
   and kind node claim): a value of the wrong JSON type is Go's ``encoding/json`` type error (the
   first one only, as the decoder returns one), unknown fields are the strict field validation
   kubectl >= 1.27 asks for (``fieldValidation=Strict``), all of them. Sources:
   k8s.io/apimachinery/pkg/runtime/serializer/json (``strict decoding error: %s``, the unknown
   fields as ``unknown field "%s"`` joined with ", ") and apiserver's
   ``endpoints/handlers/rest.go`` (``%s in version "%s" cannot be handled as a %s: %v``);
   sigs.k8s.io/json (Go's ``UnmarshalTypeError``: ``json: cannot unmarshal %s into Go struct
   field %s.%s of type %s``, the field as the path of JSON keys without list indexes, as in the
   real "ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot unmarshal
   number into Go struct field ConfigMap.data of type string").
2. Validation (422 Invalid): the rules of pkg/apis/{core,apps,batch}/validation that a manifest
   meets most often (names, selectors, container images, enums), each as a ``field.Error`` of
   k8s.io/apimachinery/pkg/util/validation/field (``Required value``, ``Invalid value: %#v: %s``,
   ``Unsupported value: %q: supported values: %s``); the name messages of
   k8s.io/apimachinery/pkg/util/validation/validation.go.
3. A safety net: a field the schema marks ``required`` that no rule here asked for is refused as
   something the fake does not model (``error: fake kubectl: …``). (The schemas are read as JSON
   and walked here, not through ``kubernetes_validate.validate``: importing jsonschema and
   re-reading the definitions per object would slow every apply; tests/k8s_schema.py uses the
   library itself for the fakes' output.)

Custom resources are checked only against their CRD's ``openAPIV3Schema`` (when it has one),
as apiextensions-apiserver does: unknown fields (unless ``x-kubernetes-preserve-unknown-fields``)
are a strict decoding error, wrong types, enums and required fields an Invalid error with
kube-openapi's wording (``%s in body must be of type %s: %q``).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = "1.32"  # kindest/node:v1.32.2 and kubectl v1.32


@dataclass
class APIError:
    """A refusal by the API server, as kubectl receives it (a metav1.Status)."""

    reason: str  # BadRequest, Invalid
    message: str  # the Status message, without kubectl's "error when creating ..." prefix
    kind: str = ""  # details.kind of an Invalid status
    name: str = ""
    causes: list[str] = field(default_factory=list)


class NotModelled(Exception):
    """Something the real API server would decide that the fake does not model."""


# -- the schema -----------------------------------------------------------------------------------


@functools.cache
def schema_dir() -> Path:
    """The package's strict v1.32 schemas, found without importing it (jsonschema is slow to import)."""
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or spec.origin is None:
        raise NotModelled(
            "the fake API server needs the kubernetes-validate package (pip install kubernetes-validate)"
        )
    return Path(spec.origin).parent / "kubernetes-json-schema" / f"v{SCHEMA_VERSION}.0-local-strict"


@functools.cache
def definitions_document() -> dict:
    return json.loads((schema_dir() / "_definitions.json").read_text())


def definitions() -> dict[str, dict]:
    return definitions_document()["$defs"]


@functools.cache
def definition_for(api_version: str, kind: str) -> str | None:
    group, _, version = api_version.rpartition("/")
    for name, schema in definitions().items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or []:
            if (gvk.get("group", ""), gvk.get("version"), gvk.get("kind")) == (group, version, kind):
                return name
    return None


def ref_name(schema: dict) -> str | None:
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[-1] if ref else None


def types_of(schema: dict) -> list[str] | None:
    kind = schema.get("type")
    return [kind] if isinstance(kind, str) else kind


def go_type(schema: dict) -> str:
    """The Go type a schema stands for, as reflect's Type.String() prints it."""
    name = ref_name(schema)
    if name:
        parts = name.split(".")
        return f"{parts[-2]}.{parts[-1]}"
    types = [t for t in types_of(schema) or [] if t != "null"]
    kind = types[0] if types else ""
    if kind == "integer":
        return schema.get("format") or "int64"
    if kind == "number":
        return "float64"
    if kind == "boolean":
        return "bool"
    if kind == "array":
        return "[]" + go_type(schema.get("items") or {})
    if kind == "object":
        return "map[string]" + go_type(schema.get("additionalProperties") or {"type": ["string"]})
    return kind or "interface {}"


def json_kind(value: Any) -> str:
    """encoding/json's name for a JSON value in an UnmarshalTypeError."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def matches(value: Any, schema_type: str) -> bool:
    return {
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "array": isinstance(value, list),
        "object": isinstance(value, dict),
        "null": value is None,
    }[schema_type]


@dataclass
class Decoding:
    unknown: list[str] = field(default_factory=list)
    type_error: str | None = None
    missing: list[str] = field(default_factory=list)  # the schema's required fields, absent


def decode(value: Any, schema: dict, path: str, keys: str, struct: str, found: Decoding) -> None:
    """Walk ``value`` along ``schema``: ``path`` as the strict decoder prints it (with [i]),
    ``keys`` as encoding/json does (JSON keys only), ``struct`` the Go struct holding the field."""
    name = ref_name(schema)
    if name:
        decode(value, definitions()[name], path, keys, name.rsplit(".", 1)[-1] or struct, found)
        return
    if value is None:
        return  # null decodes as the zero value into anything
    if "oneOf" in schema:  # IntOrString, Quantity: their own UnmarshalJSON
        if not any(matches(value, t) for alt in schema["oneOf"] for t in types_of(alt) or []):
            raise NotModelled(f"{path}: {json_kind(value)} for an int-or-string or quantity field")
        return
    types = types_of(schema)
    if types is None and "properties" not in schema:
        return  # any JSON (RawExtension, apiextensions JSON)
    if types and not any(matches(value, t) for t in types):
        if found.type_error is None:
            wanted = go_type(schema)
            found.type_error = f"json: cannot unmarshal {json_kind(value)} into Go struct field {struct}.{keys} of type {wanted}"
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            decode(item, schema.get("items") or {}, f"{path}[{i}]", keys, struct, found)
    elif isinstance(value, dict):
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        found.missing += [
            f"{path}.{key}" if path else key for key in schema.get("required") or [] if key not in value
        ]
        for key, item in value.items():
            child = f"{path}.{key}" if path else key
            child_keys = f"{keys}.{key}" if keys else key
            if properties is not None and key in properties:
                decode(item, properties[key], child, child_keys, struct, found)
            elif isinstance(extra, dict):  # a map: Go names the map field, not the key
                decode(item, extra, child, keys, struct, found)
            elif properties is not None:
                found.unknown.append(child)


# -- the API server's validation ------------------------------------------------------------------
# k8s.io/apimachinery/pkg/util/validation/validation.go
DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN = rf"{DNS1123_LABEL}(\.{DNS1123_LABEL})*"
DNS1035_LABEL = "[a-z]([-a-z0-9]*[a-z0-9])?"
LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
    f"validation is '{DNS1123_LABEL}')"
)
SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    f"validation is '{DNS1123_SUBDOMAIN}')"
)
DNS1035_MESSAGE = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
    f"regex used for validation is '{DNS1035_LABEL}')"
)
# pkg/apis/core/validation: ValidateServiceName (DNS-1035), ValidateNamespaceName (label); the
# other kinds here: NameIsDNSSubdomain.
LABEL_NAMED = {"Namespace"}
DNS1035_NAMED = {"Service"}
POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


def go_quote(value: Any) -> str:
    """Go's %q / %#v of a string (JSON's escaping is close enough for manifest text)."""
    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else go_value(value)


def go_value(value: Any) -> str:
    """Go's %#v of the values field.Invalid prints here."""
    if isinstance(value, dict):  # map[string]string, keys sorted as fmt prints maps
        inner = ", ".join(f"{json.dumps(k)}:{json.dumps(str(v))}" for k, v in sorted(value.items()))
        return f"map[string]string{{{inner}}}"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return str(value)


def required(path: str, detail: str = "") -> str:
    return f"{path}: Required value" + (f": {detail}" if detail else "")


def invalid(path: str, value: Any, detail: str) -> str:
    return f"{path}: Invalid value: {go_quote(value)}: {detail}"


def unsupported(path: str, value: Any, supported: list[str]) -> str:
    return f"{path}: Unsupported value: {go_quote(value)}: supported values: " + ", ".join(
        json.dumps(s) for s in supported
    )


def port_name_errors(path: str, name: str) -> list[str]:
    """validation.IsValidPortName: an IANA_SVC_NAME."""
    problems = []
    if len(name) > 15:
        problems.append("must be no more than 15 characters")
    if not re.fullmatch(r"[-a-z0-9]+", name):
        problems.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if "--" in name:
        problems.append("must not contain consecutive hyphens")
    if not re.search(r"[a-z]", name):
        problems.append("must contain at least one letter (a-z)")
    if name.startswith("-") or name.endswith("-"):
        problems.append("must not begin or end with a hyphen")
    return [invalid(path, name, p) for p in problems]


def name_errors(path: str, name: str, rule: str) -> list[str]:
    if rule == "label":
        if len(name) > 63:
            return [invalid(path, name, "must be no more than 63 characters")]
        return [] if re.fullmatch(DNS1123_LABEL, name) else [invalid(path, name, LABEL_MESSAGE)]
    if rule == "dns1035":
        if len(name) > 63:
            return [invalid(path, name, "must be no more than 63 characters")]
        return [] if re.fullmatch(DNS1035_LABEL, name) else [invalid(path, name, DNS1035_MESSAGE)]
    if len(name) > 253:
        return [invalid(path, name, "must be no more than 253 characters")]
    return [] if re.fullmatch(DNS1123_SUBDOMAIN, name) else [invalid(path, name, SUBDOMAIN_MESSAGE)]


PULL_POLICIES = ["Always", "IfNotPresent", "Never"]  # core/validation validatePullPolicy
PROTOCOLS = ["SCTP", "TCP", "UDP"]  # core/validation: supportedPortProtocols, sorted
RESTART_POLICIES = ["Always", "OnFailure", "Never"]  # core/validation validateRestartPolicy
SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]  # supportedServiceType, sorted


def container_errors(path: str, containers: list, kinds_seen: set[str]) -> list[str]:
    problems = []
    for i, container in enumerate(containers or []):
        if not isinstance(container, dict):
            continue
        here = f"{path}[{i}]"
        name = container.get("name") or ""
        if not name:
            problems.append(required(f"{here}.name"))
        else:
            problems += name_errors(f"{here}.name", name, "label")
            if name in kinds_seen:
                problems.append(f'{here}.name: Duplicate value: "{name}"')
            kinds_seen.add(name)
        if not container.get("image"):
            problems.append(required(f"{here}.image"))
        policy = container.get("imagePullPolicy")
        if policy is not None and policy not in PULL_POLICIES:
            problems.append(unsupported(f"{here}.imagePullPolicy", policy, PULL_POLICIES))
        for j, port in enumerate(container.get("ports") or []):
            if not isinstance(port, dict):
                continue
            where = f"{here}.ports[{j}]"
            if port.get("name"):
                problems += port_name_errors(f"{where}.name", port["name"])
            number = port.get("containerPort")
            if not number:
                problems.append(required(f"{where}.containerPort"))
            elif not 1 <= number <= 65535:
                problems.append(
                    invalid(f"{where}.containerPort", number, "must be between 1 and 65535, inclusive")
                )
            protocol = port.get("protocol")
            if protocol is not None and protocol not in PROTOCOLS:
                problems.append(unsupported(f"{where}.protocol", protocol, PROTOCOLS))
    return problems


def pod_spec_errors(path: str, spec: dict, template_of: str | None) -> list[str]:
    spec = spec or {}
    problems = []
    seen: set[str] = set()
    if not spec.get("containers"):
        problems.append(required(f"{path}.containers"))
    problems += container_errors(f"{path}.initContainers", spec.get("initContainers"), seen)
    problems += container_errors(f"{path}.containers", spec.get("containers"), seen)
    restart = spec.get("restartPolicy") or "Always"  # defaulted before validation
    if restart not in RESTART_POLICIES:
        problems.append(unsupported(f"{path}.restartPolicy", restart, RESTART_POLICIES))
    elif template_of in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet") and restart != "Always":
        # apps/validation ValidatePodTemplateSpecForReplicaSet and friends
        problems.append(unsupported(f"{path}.restartPolicy", restart, ["Always"]))
    elif template_of == "Job" and restart not in ("OnFailure", "Never"):
        # batch/validation validateJobSpec
        problems.append(unsupported(f"{path}.restartPolicy", restart, ["OnFailure", "Never"]))
    return problems


def selector_matches(selector: dict, labels: dict) -> bool:
    """metav1.LabelSelectorAsSelector(...).Matches(labels); a nil selector matches nothing."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, op, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def workload_errors(kind: str, spec: dict) -> list[str]:
    """apps/validation ValidateDeploymentSpec / ValidateReplicaSetSpec / ValidateStatefulSetSpec /
    ValidateDaemonSetSpec, batch/validation validateJobSpec: the selector and template rules."""
    problems = []
    template = spec.get("template")
    labels = ((template or {}).get("metadata") or {}).get("labels")
    selector = spec.get("selector")
    if kind == "Job" and selector is None:
        pass  # the Job controller generates its selector (manualSelector unset)
    elif selector is None:
        problems.append(required("spec.selector"))
    elif not (selector.get("matchLabels") or selector.get("matchExpressions")):
        noun = "deployment" if kind == "ReplicaSet" else kind.lower()  # ReplicaSet's says "deployment"
        problems.append(
            f"spec.selector: Invalid value: {selector_value(selector)}: empty selector is invalid for {noun}"
        )
    if template is None:
        problems.append(required("spec.template"))
        return problems
    # a nil selector matches nothing (labels.Nothing()), so it fails here too, as on a real server
    if not (kind == "Job" and selector is None) and (
        selector is None or not selector_matches(selector, labels or {})
    ):
        problems.append(
            f"spec.template.metadata.labels: Invalid value: {go_map(labels)}: `selector` does not match template `labels`"
        )
    problems += pod_spec_errors("spec.template.spec", template.get("spec") or {}, kind)
    return problems


def go_map(value: dict | None) -> str:
    """%#v of a map[string]string: nil (absent) and empty differ."""
    return "map[string]string(nil)" if value is None else go_value(value)


def selector_value(selector: dict) -> str:
    """%#v of the dereferenced *metav1.LabelSelector (field.Error dereferences pointers)."""
    labels = go_map(selector.get("matchLabels"))
    return f"v1.LabelSelector{{MatchLabels:{labels}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}}"


def service_errors(spec: dict) -> list[str]:
    problems = []
    kind = spec.get("type") or "ClusterIP"
    if kind not in SERVICE_TYPES:
        problems.append(unsupported("spec.type", kind, SERVICE_TYPES))
    ports = spec.get("ports") or []
    if not ports and kind != "ExternalName" and spec.get("clusterIP") != "None":
        problems.append(required("spec.ports"))
    for i, port in enumerate(ports):
        if not isinstance(port, dict):
            continue
        where = f"spec.ports[{i}]"
        if len(ports) > 1 and not port.get("name"):
            problems.append(required(f"{where}.name"))
        elif port.get("name"):
            problems += name_errors(f"{where}.name", port["name"], "label")
        protocol = port.get("protocol")
        if protocol is not None and protocol not in PROTOCOLS:
            problems.append(unsupported(f"{where}.protocol", protocol, PROTOCOLS))
        target = port.get("targetPort")
        if isinstance(target, str) and target and not target.isdigit():
            problems += port_name_errors(f"{where}.targetPort", target)
    return problems


def validation_errors(obj: dict) -> list[str]:
    kind = obj["kind"]
    meta = obj.get("metadata") or {}
    name = meta.get("name") or ""
    rule = "label" if kind in LABEL_NAMED else "dns1035" if kind in DNS1035_NAMED else "subdomain"
    problems = name_errors("metadata.name", name, rule) if name else []
    spec = obj.get("spec") or {}
    if kind in POD_TEMPLATE_KINDS:
        problems += workload_errors(kind, spec)
    elif kind == "Pod":
        problems += pod_spec_errors("spec", spec, None)
    elif kind == "Service":
        problems += service_errors(spec)
    return problems


# -- custom resources: the CRD's structural schema --------------------------------------------------


def crd_schema_errors(value: Any, schema: dict, path: str, unknown: list[str], invalid_: list[str]) -> None:
    """apiextensions-apiserver: pruning (unknown fields, strict) and kube-openapi's validation."""
    if value is None:
        return
    kind = schema.get("type")
    if schema.get("x-kubernetes-int-or-string"):
        if not isinstance(value, (int, str)) or isinstance(value, bool):
            invalid_.append(
                invalid(path, json_kind(value), f"{path} in body must be of type integer-or-string")
            )
        return
    names = {"object": dict, "array": list, "string": str, "boolean": bool}
    wrong = False
    if kind == "integer":
        wrong = not matches(value, "integer")
    elif kind == "number":
        wrong = not matches(value, "number")
    elif kind in names:
        wrong = not isinstance(value, names[kind]) or (kind != "boolean" and isinstance(value, bool))
    if wrong:
        # kube-openapi validate/errors.go: "%s in body must be of type %s: %q" (the value's type)
        got = {"bool": "boolean", "number": "number", "object": "object", "array": "array"}.get(
            json_kind(value), json_kind(value)
        )
        if got == "number" and isinstance(value, int):
            got = "integer"
        invalid_.append(f'{path}: Invalid value: "{got}": {path} in body must be of type {kind}: "{got}"')
        return
    if "enum" in schema and value not in schema["enum"]:
        invalid_.append(unsupported(path, value, [str(v) for v in schema["enum"]]))
    if isinstance(value, dict):
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key in schema.get("required") or []:
            if key not in value:
                invalid_.append(required(f"{path}.{key}" if path else key))
        for key, item in value.items():
            child = f"{path}.{key}" if path else key
            if properties and key in properties:
                crd_schema_errors(item, properties[key], child, unknown, invalid_)
            elif isinstance(extra, dict):
                crd_schema_errors(item, extra, child, unknown, invalid_)
            elif (
                not (schema.get("x-kubernetes-preserve-unknown-fields") or extra is True)
                and properties is not None
            ):
                unknown.append(child)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            crd_schema_errors(item, schema.get("items") or {}, f"{path}[{i}]", unknown, invalid_)


def check_custom(obj: dict, crd: dict) -> APIError | None:
    version = obj["apiVersion"].rpartition("/")[2]
    spec = crd.get("spec") or {}
    schema = next(
        (
            (v.get("schema") or {}).get("openAPIV3Schema")
            for v in spec.get("versions") or []
            if v.get("name") == version
        ),
        None,
    )
    name = (obj.get("metadata") or {}).get("name", "")
    problems = name_errors("metadata.name", name, "subdomain") if name else []
    unknown: list[str] = []
    if schema:
        body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
        crd_schema_errors(
            body,
            {
                **schema,
                "properties": {
                    k: v
                    for k, v in (schema.get("properties") or {}).items()
                    if k not in ("apiVersion", "kind", "metadata")
                },
            },
            "",
            unknown,
            problems,
        )
    kind = obj["kind"]
    if unknown:
        return APIError(
            "BadRequest",
            f'{kind} in version "{version}" cannot be handled as a {kind}: strict decoding error: '
            + ", ".join(f'unknown field "{u}"' for u in unknown),
        )
    if problems:
        return invalid_error(f"{kind}.{spec.get('group')}", kind, name, problems)
    return None


# -- the entry point ------------------------------------------------------------------------------


def invalid_error(qualified_kind: str, kind: str, name: str, causes: list[str]) -> APIError:
    # apimachinery/pkg/api/errors NewInvalid: "%s %q is invalid: %v" with the aggregate ("[a, b]")
    aggregate = causes[0] if len(causes) == 1 else "[" + ", ".join(causes) + "]"
    return APIError("Invalid", f'{qualified_kind} "{name}" is invalid: {aggregate}', kind, name, causes)


def check(obj: dict, group: str) -> APIError | None:
    """The API server's answer to creating or updating a built-in ``obj``: None if it is accepted."""
    kind, api_version = obj["kind"], obj["apiVersion"]
    version = api_version.rpartition("/")[2]
    definition = definition_for(api_version, kind)
    if definition is None:
        raise NotModelled(f"no {SCHEMA_VERSION} schema for {api_version} {kind}")
    found = Decoding()
    decode(obj, {"$ref": f"#/$defs/{definition}"}, "", "", kind, found)
    handled = f'{kind} in version "{version}" cannot be handled as a {kind}: '
    if found.type_error:
        return APIError("BadRequest", handled + found.type_error)
    if found.unknown:
        return APIError(
            "BadRequest",
            handled + "strict decoding error: " + ", ".join(f'unknown field "{u}"' for u in found.unknown),
        )
    problems = validation_errors(obj)
    if problems:
        return invalid_error(
            f"{kind}.{group}" if group else kind, kind, obj["metadata"].get("name", ""), problems
        )
    # 3. the safety net: a field the schema requires that no rule above asked for
    missing = [m for m in found.missing if not (kind == "StatefulSet" and m == "spec.serviceName")]
    # (spec.serviceName: required in the OpenAPI document, but ValidateStatefulSetSpec has no rule
    # for it: a real v1.32 server accepts a StatefulSet without it; optional in the API from v1.33)
    if missing:
        raise NotModelled(
            f"the v{SCHEMA_VERSION} schema requires {', '.join(missing)} of {kind} "
            f"{obj['metadata'].get('name', '')!r}, and the fake does not model the API server's answer"
        )
    return None
