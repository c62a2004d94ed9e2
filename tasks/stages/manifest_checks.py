"""The manifests checked before any cluster is touched: preflight's early look at their image
references (a typo must not cost a whole build first), and verify's full check, which writes them
rewritten to this run's tags.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import manifests
from ..config import Config
from ..errors import StagegateError
from ..ledger import write_text_atomic
from ..targets.forwards import forward_problems
from .preflight_check import Check


def check_manifest_references(config: Config, *, from_registry: bool = False) -> list[Check]:
    """The manifests' image references, checked before anything is built: a typo in an
    image name must not cost a whole build first. (verify checks them again.)"""
    if config.deploy is None:
        return []
    source = ", ".join(config.relpath(path) for path in config.deploy.manifests)
    if manifests.needs_kubectl(config.deploy.manifests) and shutil.which("kubectl") is None:
        return []  # check_tools reports it
    try:
        objects = manifests.render_sources(
            config.deploy.manifests, config.root, kustomize_args=config.deploy.kustomize_args
        )
    except StagegateError as error:
        return [Check("manifests", False, error.message, error)]
    invalid = manifests.validation_errors(objects)
    if invalid:
        return [Check("manifests", False, error.message, error) for error in invalid]
    errors, references = _check_references(config, objects, from_registry=from_registry)
    unread = unread_manifests(config)
    if not errors:
        return [
            Check("manifests", True, f"{len(references)} image reference(s) in {source}, all known"),
            *unread,
        ]
    return [Check("manifests", False, error.message, error) for error in errors] + unread


def unread_manifests(config: Config) -> list[Check]:
    """A warning for each plain-YAML manifests dir with YAML files in sub-folders: stagegate
    reads only the files directly in it, and a file silently left out is a missing object."""
    assert config.deploy is not None
    checks = []
    for folder, files in manifests.unread_files(config.deploy.manifests).items():
        shown = ", ".join(config.relpath(file) for file in files[:5])
        more = f" and {len(files) - 5} more" if len(files) > 5 else ""
        where = config.relpath(folder)
        checks.append(
            Check(
                "manifests",
                True,
                f"{shown}{more} not read: stagegate reads the files directly in {where}, not those "
                f'in its sub-folders (to read them all: manifests = "{where}/**/*.yaml", or make '
                f"{where} a kustomization)",
                warning=True,
            )
        )
    return checks


def check_manifests(
    config: Config, built_refs: dict[str, str], artifacts: Path, *, from_registry: bool = False
) -> tuple[list[StagegateError], dict]:
    """Check the manifests' image references, and write them rewritten to this run's tags."""
    assert config.deploy is not None
    objects = manifests.render_sources(
        config.deploy.manifests,
        config.root,
        kustomize_args=config.deploy.kustomize_args,
        log_file=artifacts / "logs" / "verify" / "render.log",
    )
    refs = {n: r for n, r in built_refs.items() if r}
    errors, references = _check_references(config, objects, from_registry=from_registry, rewritten=refs)
    if config.e2e is not None:  # a port_forward entry naming what is not deployed: before deploy
        errors += forward_problems(objects, config.e2e.port_forward)
    in_values, left = manifests.value_references(objects, config.images)
    references += in_values
    rewritten = manifests.rewrite_images(objects, refs)
    rendered = artifacts / "manifests.yaml"
    write_text_atomic(rendered, manifests.to_yaml(rewritten))
    summary = {
        "source": ", ".join(config.relpath(path) for path in config.deploy.manifests),
        "objects": len(objects),
        "images": references,
        "rendered": config.relpath(rendered),
        "not_rewritten": [
            {
                "file": ref.source,
                "resource": ref.resource,
                "field": ref.field,
                "value": ref.value,
                "why": ref.why,
            }
            for ref in left
        ],
    }
    return errors, summary


def _check_references(
    config: Config,
    objects: list[manifests.ManifestObject],
    *,
    from_registry: bool,
    rewritten: Mapping[str, str] | None = None,
) -> tuple[list[StagegateError], list[dict[str, Any]]]:
    """:func:`stagegate.manifests.check_references` against the configuration: its images, its
    ``external_images``, and the kustomize args the manifests render with."""
    assert config.deploy is not None
    return manifests.check_references(
        objects,
        root=config.root,
        configured=list(config.images),
        external=config.deploy.external_images,
        from_registry=from_registry,
        kustomize_args=config.deploy.kustomize_args,
        rewritten=rewritten,
    )
