"""Kubernetes manifests: rendered once, walked for container images, rewritten to built tags.

Shared by verify (which checks the references) and deploy (which applies the rewritten
objects). A kustomize directory is rendered with ``kubectl kustomize``; plain YAML files
(or a directory of them, not recursive, like ``kubectl apply -f DIR``) are read as they are.
A problem found in a rendered kustomize object is located in the file a person edits, through
kustomize's origin annotations (:func:`kustomize_origins`, a second render made only then).

The values of ``Secret`` objects are registered for redaction (:mod:`stagegate.redact`) as soon
as the manifests are read, before the render log is written; :func:`to_yaml` writes them as
``<redacted>`` unless asked for the real thing (what ``kubectl apply`` gets on stdin).

- :mod:`.objects` — one object and where it came from, its containers' images, the YAML of them.
- :mod:`.render` — kustomize or plain YAML rendered; what is not a Kubernetes object refused.
- :mod:`.kustomize` — kustomize's errors made readable; where a rendered object came from.
- :mod:`.images` — image references rewritten to this run's tags, and checked.
- :mod:`.validate` — the API server's rules that matter, before anything is applied.
"""

from .images import check_references, default_pull_policy, rewrite_images, value_reference, value_references
from .kustomize import ORIGIN_ANNOTATION, kustomize_origins, kustomize_reason, remote_base_failure
from .objects import (
    KUSTOMIZATION_FILES,
    ContainerImage,
    ManifestObject,
    container_images,
    is_kustomization,
    split_prerequisites,
    to_yaml,
)
from .render import (
    kubectl_missing,
    needs_kubectl,
    not_kubernetes,
    register_secrets,
    render,
    render_sources,
    unread_files,
)
from .validate import validate, validation_errors

__all__ = [
    "KUSTOMIZATION_FILES",
    "ORIGIN_ANNOTATION",
    "ContainerImage",
    "ManifestObject",
    "check_references",
    "container_images",
    "default_pull_policy",
    "is_kustomization",
    "kubectl_missing",
    "kustomize_origins",
    "kustomize_reason",
    "needs_kubectl",
    "not_kubernetes",
    "register_secrets",
    "remote_base_failure",
    "render",
    "render_sources",
    "rewrite_images",
    "split_prerequisites",
    "to_yaml",
    "unread_files",
    "validate",
    "validation_errors",
    "value_reference",
    "value_references",
]
