"""The API server's rules that matter, checked before anything is applied: a wrong type or a
missing field is ``MANIFEST_INVALID`` naming the field, as the API server would refuse it."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from typing import Any

from ..errors import Code, StagegateError
from .objects import CONTAINER_FIELDS, MANIFESTS_KEY, POD_SPEC_PATHS, ManifestObject

# -- validation: the API server's rules that matter, before anything is applied ---------------

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_IANA_SVC_NAME = re.compile(r"^(?=.*[a-z])(?!.*--)[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
RESTART_POLICIES = ("Always", "OnFailure", "Never")
# Workloads whose selector must select their own pod template (Jobs only when they give one).
SELECTOR_REQUIRED = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")
PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
HOOKS = ("postStart", "preStop")
PROTOCOLS = ("TCP", "UDP", "SCTP")
SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
# Integer fields (>= 0 unless said) of a probe; of the workloads' specs; of security contexts.
PROBE_INTEGERS = (
    "initialDelaySeconds",
    "timeoutSeconds",
    "periodSeconds",
    "successThreshold",
    "failureThreshold",
)
SPEC_INTEGERS = {
    "Job": ("backoffLimit", "completions", "parallelism", "ttlSecondsAfterFinished", "backoffLimitPerIndex"),
    "Deployment": ("minReadySeconds", "revisionHistoryLimit", "progressDeadlineSeconds"),
    "StatefulSet": ("minReadySeconds", "revisionHistoryLimit"),
    "DaemonSet": ("minReadySeconds", "revisionHistoryLimit"),
    "ReplicaSet": ("minReadySeconds",),
    "CronJob": ("startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"),
}
SECURITY_INTEGERS = ("runAsUser", "runAsGroup")
SECURITY_BOOLEANS = ("privileged", "runAsNonRoot", "readOnlyRootFilesystem", "allowPrivilegeEscalation")


class _Invalid(Exception):
    def __init__(self, field: str, problem: str, api: str = "") -> None:
        super().__init__(problem)
        self.field = field
        self.problem = problem
        self.api = api  # the API server's own words, where they are known


# The names Go's encoding/json gives a JSON value in its type errors (UnmarshalTypeError.Value).
_JSON_KINDS = (
    (bool, "bool"),
    (str, "string"),
    (int, "number"),
    (float, "number"),
    (list, "array"),
    (dict, "object"),
)


def _json_kind(value: Any) -> str:
    return next((name for kind, name in _JSON_KINDS if isinstance(value, kind)), "null")


def _wrong_type(field: str, expected: str, value: Any, go_type: str) -> _Invalid:
    """A value of the wrong JSON type: the API server refuses the whole object while decoding it."""
    if value is None:  # null is "not set" to the decoder: the field is missing, not mistyped
        return _Invalid(field, f"must be {expected}, got {_shown(value)}")
    return _Invalid(
        field,
        f"must be {expected}, got {_shown(value)}",
        f"json: cannot unmarshal {_json_kind(value)} into Go value of type {go_type}",
    )


def validate(objects: list[ManifestObject]) -> None:
    """Raise ``MANIFEST_INVALID`` for the first object the API server would reject (the others
    in ``others``): run before anything is applied, on every target."""
    errors = validation_errors(objects)
    if errors:
        first = errors[0]
        first.others = errors[1:]
        raise first


def validation_errors(objects: list[ManifestObject]) -> list[StagegateError]:
    """One ``MANIFEST_INVALID`` error per invalid object, naming file, resource and field."""
    errors: list[StagegateError] = []
    for obj in objects:
        try:
            _validate_object(obj.doc)
        except _Invalid as invalid:
            resource = _resource_name(obj.doc)
            errors.append(
                StagegateError(
                    Code.MANIFEST_INVALID,
                    f"{obj.source}: {resource} {invalid.field}: {invalid.problem}",
                    f"fix {invalid.field} of {resource} in {obj.source}; the API server would reject it"
                    + (f" ({invalid.api})" if invalid.api else ""),
                    {
                        "key": MANIFESTS_KEY,
                        "file": obj.source,
                        "resource": resource,
                        "field": invalid.field,
                    },
                )
            )
    return errors


def _resource_name(doc: dict[str, Any]) -> str:
    metadata = doc.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    shown = name if len(str(name)) <= 63 else f"{str(name)[:60]}…"
    return f"{doc.get('kind') or '(no kind)'}/{shown if isinstance(name, str) and name else '(no name)'}"


def _validate_object(doc: dict[str, Any]) -> None:
    for key in ("apiVersion", "kind"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise _Invalid(key, f"must be a non-empty string, got {_shown(doc.get(key))}")
    kind = doc["kind"]
    metadata = _mapping(doc, "metadata", "metadata", required=True)
    _object_name(metadata, kind)
    if metadata.get("namespace") is not None:
        _dns(metadata["namespace"], "metadata.namespace", _DNS1123_LABEL, 63)
    for key in ("labels", "annotations"):
        labels = _mapping(metadata, key, f"metadata.{key}")
        for name, value in labels.items():
            if not isinstance(value, str):
                raise _Invalid(f"metadata.{key}.{name}", f"must be a string, got {_shown(value)}")
    if doc.get("spec") is not None:
        _mapping(doc, "spec", "spec")
    if kind == "Secret":
        _secret(doc)
    if kind == "ConfigMap":
        for key in ("data",):
            for name, value in _mapping(doc, key, key).items():
                if not isinstance(value, str):
                    raise _Invalid(f"data.{name}", f"must be a string, got {_shown(value)}")
    if kind == "Service":
        _service_ports(doc.get("spec") or {})
    if kind in POD_SPEC_PATHS:
        _workload(doc, kind)


def _object_name(metadata: dict[str, Any], kind: str) -> None:
    if "generateName" in metadata and "name" not in metadata:
        return
    if kind == "Service":
        _dns(metadata.get("name"), "metadata.name", _DNS1035_LABEL, 63)
    elif kind == "Namespace":
        _dns(metadata.get("name"), "metadata.name", _DNS1123_LABEL, 63)
    else:
        _dns(metadata.get("name"), "metadata.name", _DNS1123_SUBDOMAIN, 253)


def _dns(value: Any, field: str, pattern: re.Pattern[str], limit: int) -> None:
    if not isinstance(value, str) or not value:
        raise _Invalid(field, f"is required and must be a string, got {_shown(value)}")
    if len(value) > limit or not pattern.match(value):
        what = "a lowercase RFC 1123 name" if pattern is not _DNS1035_LABEL else "a lowercase RFC 1035 label"
        raise _Invalid(
            field,
            f"{value[:60]!r}{'…' if len(value) > 60 else ''} is not {what} (lowercase letters, digits, '-'"
            + ("" if pattern is not _DNS1123_SUBDOMAIN else " and '.'")
            + f"; alphanumeric at both ends; at most {limit} characters)",
        )


def _mapping(parent: dict[str, Any], key: str, field: str, *, required: bool = False) -> dict[str, Any]:
    value = parent.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise _Invalid(field, f"must be a mapping, got {_shown(value)}")
    return value


def _list(parent: dict[str, Any], key: str, field: str) -> list[Any]:
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Invalid(field, f"must be a list, got {_shown(value)}")
    return value


def _integer(value: Any, field: str, low: int, high: int | None = None, go_type: str = "int32") -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong_type(field, "an integer", value, go_type)
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f">= {low}"
        raise _Invalid(field, f"must be {bounds}, got {value}")


def _optional_integer(
    parent: dict[str, Any], key: str, field: str, low: int = 0, go_type: str = "int32"
) -> None:
    if parent.get(key) is not None:
        _integer(parent[key], f"{field}.{key}", low, go_type=go_type)


def _string(parent: dict[str, Any], key: str, field: str, *, required: bool = False) -> None:
    value = parent.get(key)
    if value is None and not required:
        return
    if not isinstance(value, str) or (required and not value):
        if required and value in (None, ""):
            raise _Invalid(f"{field}.{key}", "is required")
        raise _wrong_type(f"{field}.{key}", "a string", value, "string")


def _boolean(parent: dict[str, Any], key: str, field: str) -> None:
    value = parent.get(key)
    if value is not None and not isinstance(value, bool):
        raise _wrong_type(f"{field}.{key}", "a boolean (true or false)", value, "bool")


def _strings(parent: dict[str, Any], key: str, field: str) -> None:
    """A list of strings ([]string): a string alone is not one, nor a list holding a number."""
    value = parent.get(key)
    if value is None:
        return
    if not isinstance(value, list):
        raise _wrong_type(f"{field}.{key}", "a list of strings", value, "[]string")
    for item in value:
        if not isinstance(item, str):
            raise _Invalid(
                f"{field}.{key}",
                f"must be a list of strings, got {_shown(value)}",
                f"json: cannot unmarshal {_json_kind(item)} into Go value of type string",
            )


def _one_of(parent: dict[str, Any], key: str, field: str, allowed: tuple[str, ...]) -> None:
    value = parent.get(key)
    if value is not None and value not in allowed:
        raise _Invalid(f"{field}.{key}", f"must be one of {', '.join(allowed)}, got {_shown(value)}")


def _mappings(parent: dict[str, Any], key: str, field: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each item of a list of mappings, with its field path."""
    for index, item in enumerate(_list(parent, key, f"{field}.{key}")):
        if not isinstance(item, dict):
            raise _Invalid(f"{field}.{key}[{index}]", f"must be a mapping, got {_shown(item)}")
        yield f"{field}.{key}[{index}]", item


def _string_map(parent: dict[str, Any], key: str, field: str) -> None:
    for name, value in _mapping(parent, key, f"{field}.{key}").items():
        if not isinstance(value, str):
            raise _wrong_type(f"{field}.{key}.{name}", "a string", value, "string")


def _port(value: Any, field: str, *, named: bool) -> None:
    """A port number 1-65535, or (where the API allows it: an IntOrString) an IANA service name."""
    if named and isinstance(value, str):
        if len(value) > 15 or not _IANA_SVC_NAME.match(value):
            raise _Invalid(field, f"{value!r} is neither a port number nor a valid port name")
        return
    if isinstance(value, str):
        raise _Invalid(
            field, f"must be a port number (1-65535), got {_shown(value)}: a name is not allowed here"
        )
    _integer(value, field, 1, 65535)


def _shown(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60] + '…' if len(text) > 60 else text}"


def _secret(doc: dict[str, Any]) -> None:
    for name, value in _mapping(doc, "data", "data").items():
        # Never the value itself in a message: it is secret.
        if not isinstance(value, str):
            raise _Invalid(f"data.{name}", f"must be a base64 string, got {type(value).__name__}")
        try:
            base64.b64decode("".join(value.split()), validate=True)
        except (binascii.Error, ValueError):
            raise _Invalid(f"data.{name}", "is not valid base64 (use stringData for plain text)") from None
    for name, value in _mapping(doc, "stringData", "stringData").items():
        if not isinstance(value, str):
            raise _Invalid(f"stringData.{name}", f"must be a string, got {type(value).__name__}")


def _service_ports(spec: dict[str, Any]) -> None:
    for index, port in enumerate(_list(spec, "ports", "spec.ports")):
        field = f"spec.ports[{index}]"
        if not isinstance(port, dict):
            raise _Invalid(field, f"must be a mapping, got {_shown(port)}")
        _port(port.get("port"), f"{field}.port", named=False)
        if port.get("targetPort") is not None:
            _port(port["targetPort"], f"{field}.targetPort", named=True)
        _string(port, "name", field)
        _one_of(port, "protocol", field, PROTOCOLS)
        if port.get("nodePort") is not None:
            _port(port["nodePort"], f"{field}.nodePort", named=False)
    _string_map(spec, "selector", "spec")
    _one_of(spec, "type", "spec", SERVICE_TYPES)
    _string(spec, "clusterIP", "spec")


def _workload(doc: dict[str, Any], kind: str) -> None:
    path = POD_SPEC_PATHS[kind]
    spec = _mapping(doc, "spec", "spec", required=True)
    if spec.get("replicas") is not None:
        _integer(spec["replicas"], "spec.replicas", 0)
    for key in SPEC_INTEGERS.get(kind, ()):
        _optional_integer(spec, key, "spec")
    if kind == "StatefulSet":
        _string(spec, "serviceName", "spec")
    if kind == "CronJob":
        _string(spec, "schedule", "spec")
        job = _mapping(spec, "jobTemplate", "spec.jobTemplate", required=True)
        spec = _mapping(job, "spec", "spec.jobTemplate.spec", required=True)
        for key in SPEC_INTEGERS["Job"]:
            _optional_integer(spec, key, "spec.jobTemplate.spec")
    if kind in ("Job", "CronJob"):
        _optional_integer(
            spec, "activeDeadlineSeconds", "spec" if kind == "Job" else "spec.jobTemplate.spec", 1, "int64"
        )
    if len(path) > 1:
        prefix = ".".join(path[:-1])
        template = _mapping(spec, "template", f"{prefix}", required=True)
        labels = _mapping(
            _mapping(template, "metadata", f"{prefix}.metadata"), "labels", f"{prefix}.metadata.labels"
        )
        if kind in SELECTOR_REQUIRED or (kind in ("Job", "ReplicationController") and "selector" in spec):
            _selector(spec, kind, labels)
        pod_spec = _mapping(template, "spec", ".".join(path), required=True)
    else:
        pod_spec = spec
    _pod_spec(pod_spec, ".".join(path))


def _selector(spec: dict[str, Any], kind: str, labels: dict[str, Any]) -> None:
    if "selector" not in spec:
        raise _Invalid("spec.selector", f"is required for a {kind}")
    selector = _mapping(spec, "selector", "spec.selector", required=True)
    if kind == "ReplicationController":  # a plain label map
        match_labels, expressions = selector, []
    else:
        match_labels = _mapping(selector, "matchLabels", "spec.selector.matchLabels")
        expressions = _list(selector, "matchExpressions", "spec.selector.matchExpressions")
        if not match_labels and not expressions:
            raise _Invalid("spec.selector", "is empty: it must select the pod template's labels")
    for key, value in match_labels.items():
        if labels.get(key) != value:
            raise _Invalid(
                "spec.selector",
                f"{key}={value} does not match the template's labels ({_labels(labels)})",
            )
    for index, expression in enumerate(expressions):
        field = f"spec.selector.matchExpressions[{index}]"
        if not isinstance(expression, dict) or not isinstance(expression.get("key"), str):
            raise _Invalid(
                field, f"must be a mapping with key, operator and values, got {_shown(expression)}"
            )
        key, operator, values = expression["key"], expression.get("operator"), expression.get("values") or []
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist") or not isinstance(values, list):
            raise _Invalid(
                field, f"operator must be In, NotIn, Exists or DoesNotExist, got {_shown(operator)}"
            )
        matched = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not matched:
            raise _Invalid(
                field, f"{key} {operator} {values} does not match the template's labels ({_labels(labels)})"
            )


def _labels(labels: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in labels.items()) or "none"


def _pod_spec(spec: dict[str, Any], prefix: str) -> None:
    if spec.get("restartPolicy") is not None and spec["restartPolicy"] not in RESTART_POLICIES:
        raise _Invalid(
            f"{prefix}.restartPolicy",
            f"must be one of {', '.join(RESTART_POLICIES)}, got {_shown(spec['restartPolicy'])}",
        )
    _optional_integer(spec, "terminationGracePeriodSeconds", prefix, go_type="int64")
    _optional_integer(spec, "activeDeadlineSeconds", prefix, 1, "int64")
    for key in ("hostNetwork", "hostPID", "hostIPC", "automountServiceAccountToken", "enableServiceLinks"):
        _boolean(spec, key, prefix)
    for key in ("serviceAccountName", "serviceAccount", "priorityClassName", "dnsPolicy"):
        _string(spec, key, prefix)
    _string_map(spec, "nodeSelector", prefix)
    security = _mapping(spec, "securityContext", f"{prefix}.securityContext")
    for key in (*SECURITY_INTEGERS, "fsGroup"):
        _optional_integer(security, key, f"{prefix}.securityContext", go_type="int64")
    _boolean(security, "runAsNonRoot", f"{prefix}.securityContext")
    for field, volume in _mappings(spec, "volumes", prefix):
        _volume(volume, field)
    if not _list(spec, "containers", f"{prefix}.containers"):
        raise _Invalid(f"{prefix}.containers", "must list at least one container")
    for container_field in CONTAINER_FIELDS:
        for index, container in enumerate(_list(spec, container_field, f"{prefix}.{container_field}")):
            _container(container, f"{prefix}.{container_field}[{index}]")


def _volume(volume: dict[str, Any], field: str) -> None:
    _dns(volume.get("name"), f"{field}.name", _DNS1123_LABEL, 63)
    _mapping(volume, "emptyDir", f"{field}.emptyDir")
    for source_key, name_key in (("configMap", "name"), ("secret", "secretName")):
        source = _mapping(volume, source_key, f"{field}.{source_key}")
        where = f"{field}.{source_key}"
        _string(source, name_key, where)
        _boolean(source, "optional", where)
        if source.get("defaultMode") is not None:
            _integer(source["defaultMode"], f"{where}.defaultMode", 0, 0o777)
        for item_field, item in _mappings(source, "items", where):
            _string(item, "key", item_field, required=True)
            _string(item, "path", item_field, required=True)
            if item.get("mode") is not None:
                _integer(item["mode"], f"{item_field}.mode", 0, 0o777)


def _container(container: Any, field: str) -> None:
    if not isinstance(container, dict):
        raise _Invalid(field, f"must be a mapping, got {_shown(container)}")
    _dns(container.get("name"), f"{field}.name", _DNS1123_LABEL, 63)
    field = f"{field} ({container['name']})"
    image = container.get("image")
    if not isinstance(image, str) or not image.strip():
        raise _Invalid(f"{field}.image", f"is required and must be a string, got {_shown(image)}")
    if container.get("imagePullPolicy") is not None and container["imagePullPolicy"] not in PULL_POLICIES:
        raise _Invalid(
            f"{field}.imagePullPolicy",
            f"must be one of {', '.join(PULL_POLICIES)} (case matters), got {_shown(container['imagePullPolicy'])}",
        )
    for key in ("command", "args"):
        _strings(container, key, field)
    if container.get("workingDir") is not None:
        _absolute(container["workingDir"], f"{field}.workingDir")
    for key in ("stdin", "stdinOnce", "tty"):
        _boolean(container, key, field)
    for port_field, port in _mappings(container, "ports", field):
        _port(port.get("containerPort"), f"{port_field}.containerPort", named=False)
        if port.get("hostPort") is not None:
            _port(port["hostPort"], f"{port_field}.hostPort", named=False)
        if port.get("name") is not None:
            _string(port, "name", port_field)
            _port(port["name"], f"{port_field}.name", named=True)
        _one_of(port, "protocol", port_field, PROTOCOLS)
    for mount_field, mount in _mappings(container, "volumeMounts", field):
        _absolute(mount.get("mountPath"), f"{mount_field}.mountPath")
        _string(mount, "name", mount_field, required=True)
        _boolean(mount, "readOnly", mount_field)
        _string(mount, "subPath", mount_field)
    for index, variable in enumerate(_list(container, "env", f"{field}.env")):
        if (
            not isinstance(variable, dict)
            or not isinstance(variable.get("name"), str)
            or not variable["name"]
        ):
            raise _Invalid(f"{field}.env[{index}]", f"must be a mapping with a name, got {_shown(variable)}")
        if variable.get("value") is not None and not isinstance(variable["value"], str):
            raise _wrong_type(f"{field}.env[{index}].value", "a string", variable["value"], "string")
        _env_source(variable, f"{field}.env[{index}]")
    for source_field, source in _mappings(container, "envFrom", field):
        _string(source, "prefix", source_field)
        for key in ("configMapRef", "secretRef"):
            ref = _mapping(source, key, f"{source_field}.{key}")
            _string(ref, "name", f"{source_field}.{key}")
            _boolean(ref, "optional", f"{source_field}.{key}")
    security = _mapping(container, "securityContext", f"{field}.securityContext")
    for key in SECURITY_INTEGERS:
        _optional_integer(security, key, f"{field}.securityContext", go_type="int64")
    for key in SECURITY_BOOLEANS:
        _boolean(security, key, f"{field}.securityContext")
    capabilities = _mapping(security, "capabilities", f"{field}.securityContext.capabilities")
    for key in ("add", "drop"):
        _strings(capabilities, key, f"{field}.securityContext.capabilities")
    for probe_name in PROBES:
        probe = _mapping(container, probe_name, f"{field}.{probe_name}")
        if container.get(probe_name) is not None:
            _handler(probe, f"{field}.{probe_name}", ("exec", "httpGet", "tcpSocket", "grpc"))
            for key in PROBE_INTEGERS:
                _optional_integer(probe, key, f"{field}.{probe_name}")
            _optional_integer(probe, "terminationGracePeriodSeconds", f"{field}.{probe_name}", 1, "int64")
    lifecycle = _mapping(container, "lifecycle", f"{field}.lifecycle")
    for hook in HOOKS:
        handler = _mapping(lifecycle, hook, f"{field}.lifecycle.{hook}")
        if lifecycle.get(hook) is not None:
            _handler(handler, f"{field}.lifecycle.{hook}", ("exec", "httpGet", "tcpSocket", "sleep"))


def _env_source(variable: dict[str, Any], field: str) -> None:
    source = _mapping(variable, "valueFrom", f"{field}.valueFrom")
    for key in ("configMapKeyRef", "secretKeyRef"):
        ref = _mapping(source, key, f"{field}.valueFrom.{key}")
        if key in source:
            _string(ref, "name", f"{field}.valueFrom.{key}")
            _string(ref, "key", f"{field}.valueFrom.{key}", required=True)
            _boolean(ref, "optional", f"{field}.valueFrom.{key}")
    field_ref = _mapping(source, "fieldRef", f"{field}.valueFrom.fieldRef")
    if "fieldRef" in source:
        _string(field_ref, "fieldPath", f"{field}.valueFrom.fieldRef", required=True)
        _string(field_ref, "apiVersion", f"{field}.valueFrom.fieldRef")


def _handler(handler: dict[str, Any], field: str, kinds: tuple[str, ...]) -> None:
    """A probe's or a lifecycle hook's action: exactly one handler, each field of its type."""
    given = [kind for kind in kinds if handler.get(kind) is not None]
    if not given:
        raise _Invalid(field, f"must specify a handler type ({', '.join(kinds)})")
    if len(given) > 1:
        raise _Invalid(field, f"may not specify more than 1 handler type, got {', '.join(given)}")
    kind = given[0]
    action = _mapping(handler, kind, f"{field}.{kind}")
    where = f"{field}.{kind}"
    if kind == "exec":
        _strings(action, "command", where)
    elif kind == "sleep":
        _integer(action.get("seconds"), f"{where}.seconds", 0, go_type="int64")
    else:
        _port(action.get("port"), f"{where}.port", named=kind != "grpc")
        _string(action, "host", where)
    if kind == "httpGet":
        _string(action, "path", where)
        _one_of(action, "scheme", where, ("HTTP", "HTTPS"))
        for header_field, header in _mappings(action, "httpHeaders", where):
            _string(header, "name", header_field, required=True)
            _string(header, "value", header_field)
    if kind == "grpc":
        _string(action, "service", where)


def _absolute(value: Any, field: str) -> None:
    if not isinstance(value, str) or not value.startswith("/"):
        raise _Invalid(field, f"must be an absolute path, got {_shown(value)}")
