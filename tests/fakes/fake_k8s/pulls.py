"""Whether the node could pull an image: loaded by ``kind load``, named ``pullable`` by the
scenario, served by one of its ``registries``, or reached through the node's hosts.toml files."""

from __future__ import annotations

import ipaddress
import json
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from .formats import normalized_image
from .node import CONTAINERD_CONFIG, docker
from .output import Failure


def image_repository(ref: str) -> str:
    """The repository of a reference, as containerd names it: busybox:1 -> docker.io/library/busybox."""
    full = normalized_image(ref)
    return full.partition("@")[0] if "@" in full else full.rsplit(":", 1)[0]


def image_available(image: str, cluster: dict, scenario: dict) -> bool:
    """On the node (loaded by `kind load`), or served by a registry: the scenario's ``pullable``,
    one of its ``registries``, or a registry container the node's containerd reaches through a
    hosts.toml (:func:`pullable_through_hosts`)."""
    full = normalized_image(image)
    if full in cluster.get("node_images", []):
        return True
    for entry in scenario.get("pullable") or []:
        if "@" not in entry and ":" not in entry.rsplit("/", 1)[-1]:  # a repository: any tag or digest
            if image_repository(entry) == image_repository(image):
                return True
        elif normalized_image(entry) == full:
            return True
    return registry_serves(image, scenario) or pullable_through_hosts(image, cluster)


MANIFEST_ACCEPT = (
    "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"
)


def name_and_reference(rest: str) -> tuple[str, str]:
    """``repo/name:tag`` or ``repo/name@sha256:…`` (after the registry host): the registry API's
    name and reference (``latest`` without either)."""
    if "@" in rest:
        name, _, reference = rest.partition("@")
        return name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name, reference
    if ":" in rest.rsplit("/", 1)[-1]:
        name, _, reference = rest.rpartition(":")
        return name, reference
    return rest, "latest"


def manifest_served(base: str, name: str, reference: str) -> bool:
    """``HEAD <base>/<name>/manifests/<reference>`` (``base`` ends in /v2) answers 200."""
    request = urllib.request.Request(
        f"{base}/{name}/manifests/{reference}", method="HEAD", headers={"Accept": MANIFEST_ACCEPT}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def registry_serves(image: str, scenario: dict) -> bool:
    """An image of one of the scenario's ``registries`` (real registries on 127.0.0.1, e.g.
    ``["127.0.0.1:5000"]``) is pullable when that registry serves its manifest (the registry
    API: ``GET /v2/<name>/manifests/<tag or digest>``), as a node's containerd would pull it."""
    host, _, rest = image.partition("/")
    if host not in (scenario.get("registries") or []) or not rest:
        return False
    return manifest_served(f"http://{host}/v2", *name_and_reference(rest))


# -- pulls through the node's hosts.toml files ----------------------------------------------------
# containerd (v2.0, the kindest/node v1.32 one): with the CRI plugin's `registry.config_path` set
# (docs/hosts.md; kind's local-registry recipe, KEP-1755), a pull of HOST/name looks for
# <config_path>/HOST/hosts.toml (else <config_path>/_default/hosts.toml; core/remotes/docker/
# config/hosts.go) and tries its [host."URL"] entries in order, then its `server`; a host needs the
# `resolve` capability for a tag and `pull` for a digest (both by default; core/remotes/docker/
# resolver.go), and its URL's path is `/v2` unless given (with `override_path`, as given). The
# node resolves a host's name with Docker's embedded DNS, which answers on user-defined networks
# only (not the default `bridge`) with the names and network aliases of the containers attached
# to the same network (moby: libnetwork resolver). The fake asks the registry from the host: the
# container's IP on that network, `HEAD /v2/<name>/manifests/<ref>` (what containerd's resolver
# sends first). Not modelled: https hosts (no TLS to a registry container), and the default server
# (`https://HOST`, contacted when nothing above answers): from the node, localhost is the node.
# Every read of the node is cached for the life of the fake process (one `kubectl get`).
_NODE_CACHE: dict[tuple[str, ...], Any] = {}


def node_file(node: str, path: str) -> str | None:
    """A file of the node (`docker exec NODE cat PATH`), or None when it cannot be read."""
    key = ("file", node, path)
    if key not in _NODE_CACHE:
        try:
            read = docker("exec", node, "cat", path)
        except Failure:  # no docker CLI: nothing can be read
            read = None
        _NODE_CACHE[key] = read.stdout if read is not None and read.returncode == 0 else None
    return _NODE_CACHE[key]


def docker_json(*args: str) -> Any:
    key = ("docker", *args)
    if key not in _NODE_CACHE:
        try:
            result = docker(*args)
            _NODE_CACHE[key] = json.loads(result.stdout) if result.returncode == 0 else None
        except (Failure, ValueError):
            _NODE_CACHE[key] = None
    return _NODE_CACHE[key]


def image_registry_host(image: str) -> str | None:
    """The registry host of an image written with one (``localhost:5001/x``, ``ghcr.io/x``)."""
    first, sep, _ = image.partition("@")[0].partition("/")
    return first if sep and ("." in first or ":" in first or first == "localhost") else None


def node_toml(node: str, path: str) -> dict | None:
    text = node_file(node, path)
    if text is None:
        return None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None  # containerd fails the pull on an unparsable hosts.toml, or does not start


def registry_hosts(node: str, host: str) -> list[tuple[str, dict]]:
    """(URL, its settings) of the hosts.toml the node's containerd reads for ``host``, in order."""
    config = node_toml(node, CONTAINERD_CONFIG) or {}
    cri = ((config.get("plugins") or {}).get("io.containerd.grpc.v1.cri") or {}).get("registry") or {}
    config_path = cri.get("config_path")
    if not isinstance(config_path, str) or not config_path:
        return []
    root = config_path.rstrip("/")
    hosts = node_toml(node, f"{root}/{host}/hosts.toml")
    if hosts is None:
        hosts = node_toml(node, f"{root}/_default/hosts.toml")
    if hosts is None:
        return []
    found = [(url, entry) for url, entry in (hosts.get("host") or {}).items() if isinstance(entry, dict)]
    if isinstance(hosts.get("server"), str):
        found.append((hosts["server"], hosts))
    return found


def node_networks(node: str) -> dict[str, dict]:
    inspected = docker_json("inspect", node)
    return ((inspected or [{}])[0].get("NetworkSettings") or {}).get("Networks") or {}


def address_in_node(node: str, name: str) -> str | None:
    """The IP that ``name`` reaches from the node: a container attached to one of the node's
    user-defined networks under that name or network alias (Docker's embedded DNS), or an IP of
    a container on one of the node's networks; None for anything else (the node's loopback too)."""
    try:
        literal = ipaddress.ip_address(name)
    except ValueError:
        literal = None
    if literal is not None and literal.is_loopback:
        return None
    for network in node_networks(node):
        if network in ("host", "none") or (literal is None and network == "bridge"):
            continue
        attached = ((docker_json("network", "inspect", network) or [{}])[0].get("Containers")) or {}
        if literal is not None:
            if any(c.get("IPv4Address", "").split("/")[0] == name for c in attached.values()):
                return name
            continue
        containers = (docker_json("inspect", *sorted(attached)) or []) if attached else []
        for container in containers:
            endpoint = ((container.get("NetworkSettings") or {}).get("Networks") or {}).get(network) or {}
            names = {container.get("Name", "").lstrip("/"), *(endpoint.get("Aliases") or [])}
            names |= set(endpoint.get("DNSNames") or [])
            if name.lower() in {n.lower() for n in names} and endpoint.get("IPAddress"):
                return endpoint["IPAddress"]
    return None


def pullable_through_hosts(image: str, cluster: dict) -> bool:
    """Whether the node's containerd pulls ``image`` through a hosts.toml (see above)."""
    host = image_registry_host(image)
    node = cluster.get("node")
    if host is None or not node:
        return False
    key = ("pull", node, image)
    if key in _NODE_CACHE:
        return _NODE_CACHE[key]
    name, reference = name_and_reference(image.partition("/")[2])
    needed = "pull" if reference.startswith("sha256:") else "resolve"
    served = False
    for url, entry in registry_hosts(node, host):
        capabilities = entry.get("capabilities", ["pull", "resolve", "push"])
        parsed = urllib.parse.urlsplit(url)
        if needed not in capabilities or parsed.scheme != "http" or not parsed.hostname:
            continue
        address = address_in_node(node, parsed.hostname)
        if address is None:
            continue
        path = parsed.path.rstrip("/")
        if not entry.get("override_path") and not path.endswith("/v2"):
            path += "/v2"
        netloc = f"[{address}]" if ":" in address else address
        if manifest_served(f"http://{netloc}:{parsed.port or 80}{path}", name, reference):
            served = True
            break
    _NODE_CACHE[key] = served
    return served
