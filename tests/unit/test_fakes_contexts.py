"""The fake kubectl's additions for the existing target that need no cluster: kubeconfig
contexts (`config get-contexts -o name`, `--context`). The cluster-side ones (RBAC
`forbidden`, `registries`, `get --ignore-not-found`) run in tests/integration/test_existing_target.py."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

BIN = Path(__file__).resolve().parents[2] / "tests" / "fakes" / "bin"


def kubectl(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env.update(PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", FAKE_K8S_STATE=str(tmp_path / "state"))
    return subprocess.run(["kubectl", *args], capture_output=True, text=True, env=env, timeout=60)


def kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "config"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {}}],
                "contexts": [
                    {"name": "ci", "context": {"cluster": "c", "user": "u"}},
                    {"name": "prod", "context": {"cluster": "c", "user": "u"}},
                ],
                "current-context": "prod",
            }
        )
    )
    return path


def test_config_get_contexts_lists_the_names(tmp_path: Path) -> None:
    result = kubectl(
        tmp_path, "--kubeconfig", str(kubeconfig(tmp_path)), "config", "get-contexts", "-o", "name"
    )
    assert (result.returncode, result.stdout) == (0, "ci\nprod\n")


def test_config_refuses_what_it_does_not_know(tmp_path: Path) -> None:
    result = kubectl(tmp_path, "--kubeconfig", str(kubeconfig(tmp_path)), "config", "use-context", "ci")
    assert result.returncode == 1 and "only `kubectl config get-contexts -o name`" in result.stderr


def test_a_missing_context_is_refused_and_a_known_one_reaches_its_server(tmp_path: Path) -> None:
    config = str(kubeconfig(tmp_path))
    missing = kubectl(tmp_path, "--kubeconfig", config, "--context", "ghost", "get", "pods", "-o", "json")
    assert missing.returncode == 1 and "context was not found for specified context: ghost" in missing.stderr
    known = kubectl(tmp_path, "--kubeconfig", config, "--context", "ci", "get", "pods", "-o", "json")
    assert known.returncode == 1 and "127.0.0.1:1 was refused" in known.stderr
