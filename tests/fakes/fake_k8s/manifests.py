"""What ``-f`` and ``-k`` read (files, directories, stdin, the real kubectl's kustomize), and
the kind each object maps to."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from .objects import KINDS, Kind
from .output import Failure

BIN_DIR = Path(__file__).resolve().parent.parent / "bin"


def real_kubectl() -> str | None:
    """The next real kubectl on PATH after tests/fakes/bin."""
    me = Path(sys.argv[0]).resolve()
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(entry or ".") / "kubectl"
        if (
            Path(entry or ".").resolve() == BIN_DIR
            or not os.access(candidate, os.X_OK)
            or candidate.resolve() == me
        ):
            continue
        return str(candidate)
    return None


def kubectl_kustomize(argv: list[str]) -> int:
    """Delegated to the next real kubectl on PATH (kustomize is pure client-side work)."""
    real = real_kubectl()
    if real is not None:
        return subprocess.run([real, *argv], check=False).returncode
    raise Failure(
        "error: fake kubectl: `kubectl kustomize` runs the real kubectl, and there is none on PATH after tests/fakes/bin"
    )


def kustomize_output(directory: str) -> str:
    """`kubectl kustomize DIR` of the next real kubectl on PATH (apply -k builds with it too)."""
    real = real_kubectl()
    if real is None:
        raise Failure(
            "error: fake kubectl: `apply -k` runs the real kubectl's kustomize, and there is none on PATH after tests/fakes/bin"
        )
    result = subprocess.run([real, "kustomize", directory], capture_output=True, text=True, check=False)
    if result.returncode:
        raise Failure(result.stderr.rstrip("\n") or f"error: kustomize {directory} failed")
    return result.stdout


def load_manifests(files: list[str], kustomize: str | None = None) -> list[tuple[str, dict]]:
    """(source, object) for each object of -f FILE|DIR|- (List kinds unpacked) or -k DIR, like kubectl's builder."""
    if not files and not kustomize:
        raise Failure("error: must specify one of -f and -k")
    found = []
    for name in files or [kustomize]:
        if kustomize:
            sources = [(kustomize, kustomize_output(kustomize))]
        elif name == "-":
            sources = [("STDIN", sys.stdin.read())]
        else:
            path = Path(name)
            if not path.exists():
                raise Failure(f'error: the path "{name}" does not exist')
            paths = (
                sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml", ".json"))
                if path.is_dir()
                else [path]
            )
            sources = [(str(p), p.read_text()) for p in paths]
        for source, text in sources:
            try:
                docs = [d for d in yaml.safe_load_all(text) if d]
            except yaml.YAMLError as exc:
                raise Failure(
                    f"error: error parsing {source}: error converting YAML to JSON: {exc}"
                ) from None
            for doc in docs:
                if not isinstance(doc, dict):
                    raise Failure(f"error: error parsing {source}: not a Kubernetes object: {doc!r}")
                missing = [f"{key} not set" for key in ("apiVersion", "kind") if not doc.get(key)]
                if missing:
                    raise Failure(
                        f'error: error validating "{source}": error validating data: [{", ".join(missing)}]; if you choose to ignore these errors, turn validation off with --validate=false'
                    )
                if doc["kind"].endswith("List"):
                    found.extend((source, item) for item in doc.get("items") or [])
                else:
                    found.append((source, doc))
    return found


def resolve(
    source: str, obj: dict, namespace: str, explicit: bool, custom: dict | None = None
) -> tuple[Kind, str, str]:
    kind = KINDS.get(obj["kind"])
    name = (obj.get("metadata") or {}).get("name", "")
    if kind is None or kind.api_version != obj["apiVersion"]:
        kind = (custom or {}).get((obj["apiVersion"], obj["kind"]))
    if kind is None:
        raise Failure(
            f'error: resource mapping not found for name: "{name}" namespace: "{namespace}" from "{source}": '
            f'no matches for kind "{obj["kind"]}" in version "{obj["apiVersion"]}"\nensure CRDs are installed first'
        )
    if not name:
        raise Failure(
            f'error: error when retrieving current configuration of:\nResource: "{kind.resource}", GroupVersionKind: "{obj["apiVersion"]}, Kind={kind.kind}"\nfrom server for: "{source}": resource name may not be empty'
        )
    ns = ""
    if kind.namespaced:
        ns = obj["metadata"].get("namespace") or namespace
        if explicit and ns != namespace:
            raise Failure(
                f'error: the namespace from the provided object "{ns}" does not match the namespace "{namespace}". You must pass \'--namespace={ns}\' to perform this operation.'
            )
    return kind, ns, name
