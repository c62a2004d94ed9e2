"""The kubeconfig kind writes for a cluster, and how it merges it into an existing file."""

from __future__ import annotations

from pathlib import Path

import yaml

from .output import Failure


def refuse_default_kubeconfig() -> str:
    raise Failure(
        "ERROR: fake kind: pass --kubeconfig PATH (the real kind would write $KUBECONFIG or "
        "~/.kube/config, which the fakes never touch)"
    )


def kubeconfig_of(cluster: dict) -> dict:
    """kind's kubeconfig (what `kind get kubeconfig` prints); the credentials are not real PEM."""
    entry = f"kind-{cluster['name']}"
    return {
        "apiVersion": "v1",
        "clusters": [
            {
                "cluster": {
                    "certificate-authority-data": cluster["ca"],
                    "server": f"https://127.0.0.1:{cluster['port']}",
                },
                "name": entry,
            }
        ],
        "contexts": [{"context": {"cluster": entry, "user": entry}, "name": entry}],
        "current-context": entry,
        "kind": "Config",
        "preferences": {},
        "users": [
            {
                "name": entry,
                "user": {"client-certificate-data": cluster["ca"], "client-key-data": cluster["ca"]},
            }
        ],
    }


def merge_kubeconfig(path: Path, cluster: dict) -> None:
    """Like kind: replace the kind-<name> entries of an existing file, set current-context."""
    config = (yaml.safe_load(path.read_text()) if path.exists() else None) or {}
    mine = kubeconfig_of(cluster)
    for key in ("clusters", "contexts", "users"):
        entry = mine[key][0]
        config[key] = [e for e in config.get(key) or [] if e.get("name") != entry["name"]] + [entry]
    merged = {**mine, **config, "current-context": mine["current-context"]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({k: merged[k] for k in sorted(merged)}, sort_keys=False))
