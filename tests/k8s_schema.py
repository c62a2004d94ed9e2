"""Is a JSON object shaped as the Kubernetes API would send it? For contract tests of fakes.

``assert_api_shaped(obj)`` validates an object, or the ``v1`` ``List`` that ``kubectl get -o json``
prints, against the Kubernetes OpenAPI schemas that the ``kubernetes-validate`` package ships
(``strict``: a field the API does not have fails too). Custom resources have no such schema:
pass their CRDs (``crds=``) to check them against the CRD's ``openAPIV3Schema``, or they fail.

    from tests.k8s_schema import assert_api_shaped
    assert_api_shaped(json.loads(kubectl("get", "pods", "-o", "json")))
"""

from __future__ import annotations

from typing import Any

import jsonschema
import kubernetes_validate

DEFAULT_VERSION = "1.32"  # the fakes' kubectl and kind node
LIST_META_KEYS = {"continue": str, "remainingItemCount": int, "resourceVersion": str, "selfLink": str}


class NotAPIShaped(AssertionError):
    pass


def assert_api_shaped(obj: Any, version: str = DEFAULT_VERSION, *, crds: list[dict] | None = None) -> int:
    """Raise NotAPIShaped unless ``obj`` (an object or a v1 List of objects) matches the schemas
    of Kubernetes ``version``; return how many objects were checked."""
    if not isinstance(obj, dict):
        raise NotAPIShaped(f"not a JSON object: {obj!r:.200}")
    if obj.get("kind") == "List" and obj.get("apiVersion") == "v1":
        extra = set(obj) - {"apiVersion", "kind", "items", "metadata"}
        if extra or not isinstance(obj.get("items"), list):
            raise NotAPIShaped(f"a v1 List has apiVersion, kind, items (a list), metadata; not {sorted(obj)}")
        for key, value in (obj.get("metadata") or {}).items():
            if key not in LIST_META_KEYS or not isinstance(value, LIST_META_KEYS[key]):
                raise NotAPIShaped(f"List metadata: {key}={value!r} is not a ListMeta field")
        return sum(assert_api_shaped(item, version, crds=crds) for item in obj["items"])
    where = f"{obj.get('kind')} {(obj.get('metadata') or {}).get('name')!r}"
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        schema = custom_schema(obj, crds or [])
        if schema is None:
            raise NotAPIShaped(f"{where}: no schema for {obj.get('apiVersion')} {obj.get('kind')}") from None
        try:
            jsonschema.validate(body_of(obj), schema)
        except jsonschema.ValidationError as exc:
            raise NotAPIShaped(
                f"{where} (custom resource): {exc.message} at {list(exc.absolute_path)}"
            ) from None
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.absolute_path)
        raise NotAPIShaped(f"{where}: {exc.message} at {path or '(top)'}") from None
    return 1


def body_of(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}


def custom_schema(obj: dict, crds: list[dict]) -> dict | None:
    """The openAPIV3Schema of the CRD version serving obj ({} when it has none), without the
    apiVersion/kind/metadata part the API server checks itself; None: no such CRD."""
    group, _, version = obj.get("apiVersion", "").rpartition("/")
    for crd in crds:
        spec = crd.get("spec") or {}
        if spec.get("group") != group or (spec.get("names") or {}).get("kind") != obj.get("kind"):
            continue
        for served in spec.get("versions") or []:
            if served.get("name") == version:
                schema = dict((served.get("schema") or {}).get("openAPIV3Schema") or {})
                properties = {
                    k: v
                    for k, v in (schema.get("properties") or {}).items()
                    if k not in ("apiVersion", "kind", "metadata")
                }
                return {**schema, "properties": properties} if schema else {}
    return None
