"""``kind load docker-image`` and ``kind load image-archive``: images put on the node (with the
scenario's scripted load failures)."""

from __future__ import annotations

import json
from pathlib import Path

from .node import docker, write_node_images
from .output import Failure, err
from .state import State, read_json, write_json


def kind_load(state: State, name: str, images: list[str], nodes: list[str]) -> int:
    # kind: pkg/cmd/kind/load/docker-image/docker-image.go and pkg/cluster/nodeutils (the import)
    found = {}
    for image in images:
        inspected = docker("image", "inspect", "--format", "{{.Id}}|{{.Size}}", image)
        if inspected.returncode != 0:
            raise Failure(f'ERROR: image: "{image}" not present locally')
        image_id, size = inspected.stdout.strip().split("|")
        found[image] = (image_id, size)
    scenario = state.scenario()
    with state.lock():
        cluster = state.cluster(name)
        if cluster is None:
            raise Failure(f'ERROR: no nodes found for cluster "{name}"')
        for node in nodes:
            if node != cluster["node"]:
                raise Failure(f'ERROR: unknown node: "{node}"')
        node_dir = state.cluster_dir(name) / "node"
        loaded = read_json(node_dir / "images.json", {})
        to_load = []
        for image, (image_id, _) in found.items():
            if image in (loaded.get(image_id) or {}).get("refs", []):
                err(f'Image: "{image}" with ID "{image_id}" found to be already present on all nodes.')
            else:
                err(
                    f'Image: "{image}" with ID "{image_id}" not yet present on node "{cluster["node"]}", loading...'
                )
                to_load.append(image)
        if not to_load:
            return 0
        used = read_json(state.root / "load_failures_used.json", {})
        failing = [
            i for i in to_load if used.get(i, 0) < int((scenario.get("load_failures") or {}).get(i, 0))
        ]
        if failing:
            for image in failing:
                used[image] = used.get(image, 0) + 1
            write_json(state.root / "load_failures_used.json", used)
            raise Failure(
                f'ERROR: failed to load image: command "docker exec --privileged -i {cluster["node"]} ctr '
                '--namespace=k8s.io images import --all-platforms --digests --snapshotter=overlayfs -" '
                "failed with error: exit status 1\nCommand Output: ctr: content digest "
                f"{found[failing[0]][0]}: not found"
            )
        for image in to_load:
            image_id, size = found[image]
            for record in loaded.values():  # a tag moves to the image loaded last
                record["refs"] = [r for r in record["refs"] if r != image]
            loaded.setdefault(image_id, {"refs": [], "size": size})["refs"].append(image)
        write_node_images(node_dir, loaded)
    return 0


def archive_images(path: Path) -> dict[str, tuple[str, str]]:
    """``{ref: (image_id, size)}`` of a ``docker save`` archive, from its manifest.json (the
    config blob's digest is the image ID: ``<hex>.json`` in the engine's older layout,
    ``blobs/sha256/<hex>`` in the OCI layout of Docker 25 and later)."""
    import tarfile

    try:
        with tarfile.open(path) as archive:
            member = archive.extractfile("manifest.json")
            entries = json.loads(member.read()) if member else None
    except (tarfile.TarError, KeyError, ValueError, OSError) as exc:
        raise Failure(f"ERROR: failed to load image: {path} is not an image archive: {exc}") from None
    size = str(path.stat().st_size)
    found = {}
    for entry in entries or []:
        image_id = "sha256:" + Path(entry["Config"]).name.removesuffix(".json")
        for ref in entry.get("RepoTags") or []:
            found[ref] = (image_id, size)
    return found


def kind_load_archive(state: State, name: str, archive: str, nodes: list[str]) -> int:
    # kind: pkg/cmd/kind/load/image-archive/image-archive.go — stat the file, list the nodes,
    # then import the archive on every selected node (no check of what the node already has)
    path = Path(archive)
    if not path.exists():
        raise Failure(f"ERROR: stat {archive}: no such file or directory")
    found = archive_images(path)
    with state.lock():
        cluster = state.cluster(name)
        if cluster is None:
            raise Failure(f'ERROR: no nodes found for cluster "{name}"')
        for node in nodes:
            if node != cluster["node"]:
                raise Failure(f"ERROR: unknown node: {node}")
        node_dir = state.cluster_dir(name) / "node"
        loaded = read_json(node_dir / "images.json", {})
        for image, (image_id, size) in found.items():
            for record in loaded.values():  # a tag moves to the image loaded last
                record["refs"] = [r for r in record["refs"] if r != image]
            loaded.setdefault(image_id, {"refs": [], "size": size})["refs"].append(image)
        write_node_images(node_dir, loaded)
    return 0
