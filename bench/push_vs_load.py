"""What `kind load` sends versus what a registry push sends (kind with a local registry,
`[tool.stagegate.cluster] local_registry`): bytes and seconds, measured on this machine, for
N images sharing one base and for this repository's example.

    python bench/push_vs_load.py            # 12 images on BASE_IMAGE (default localhost/python-base:bookworm)
    python bench/push_vs_load.py --images 3
    python bench/push_vs_load.py --example  # the example's images, built by stagegate's build stage

`kind load docker-image IMAGE` runs `docker save IMAGE` on the host and streams the whole tar
into `ctr import` on every node: each image travels whole, shared layers included. No kind can
run on these machines, so its side is measured as that host half — the `docker save` stream,
bytes and seconds, per image as stagegate loads them (one call per image) — without the
node's import, which only adds to it. The registry side is real: Debian's docker-registry on
127.0.0.1, a fresh storage dir, `docker push` of every image; bytes are the blobs the registry
stored (each uploaded once: a layer already there is never sent again), counted with the
blob uploads in its access log. Then the push again: what a second, unchanged run costs.
Writes its case into bench/push_vs_load.json (the other case's figures stay).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent


def sh(*argv: str, stdout=subprocess.DEVNULL) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=True, stdout=stdout, stderr=subprocess.PIPE)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def example_images(work: Path) -> list[str]:
    """The example's images as stagegate's build stage tags them (preflight and build run in
    this process, with an artifacts dir of their own: the checkout's .stagegate is untouched)."""
    from python_on_whales import DockerClient  # only this case needs stagegate
    from rich.console import Console
    from stagegate.pipeline import run_stage
    from stagegate.ui import Reporter

    env = {**os.environ, "STAGEGATE_ARTIFACTS": str(work / "artifacts")}
    reporter = Reporter(Console(file=sys.stderr))
    for stage in ("preflight", "build"):
        code = run_stage(
            stage, [], root=HERE.parent, reporter=reporter, docker=DockerClient(), env=env
        ).exit_code
        if code:
            raise SystemExit(f"the example's {stage} failed: {work / 'artifacts' / 'error.json'}")
    record = json.loads((work / "artifacts" / "run.json").read_text())
    return [entry["ref"] for entry in record["stages"]["build"]["outputs"]["images"].values()]


def synthetic_images(work: Path, prefix: str, count: int, base: str) -> list[str]:
    """``count`` images, each one 1 MB layer of its own on the shared ``base``."""
    images = [f"{prefix}/app{i}:bench" for i in range(count)]
    context = work / "context"
    context.mkdir()
    for i, image in enumerate(images):
        (context / "Dockerfile").write_text(f"FROM {base}\nRUN head -c 1000000 /dev/urandom > /own-{i}\n")
        sh("docker", "build", "-q", "-t", image, str(context))
    return images


def measure(images: list[str], work: Path, port: int) -> dict:
    """kind load's host half, then a push of every image, then the push again."""
    load_bytes, started = 0, time.perf_counter()
    for image in images:  # kind load's host half: the whole image, per image
        saved = subprocess.run(["docker", "save", image], check=True, capture_output=True)
        load_bytes += len(saved.stdout)
    load_s = time.perf_counter() - started

    def uploads() -> int:
        return sum(
            1
            for line in (work / "registry.log").read_text().splitlines()
            if "/blobs/uploads/" in line and 'HTTP/1.1"' in line
        )

    started = time.perf_counter()
    for image in images:
        remote = f"127.0.0.1:{port}/{image}"
        sh("docker", "tag", image, remote)
        sh("docker", "push", "-q", remote)
    push_s = time.perf_counter() - started
    push_uploads = uploads()
    stored = sum(p.stat().st_size for p in (work / "data").rglob("data") if "blobs" in p.parts)

    started = time.perf_counter()
    for image in images:
        sh("docker", "push", "-q", f"127.0.0.1:{port}/{image}")
    again_s = time.perf_counter() - started
    return {
        "images": len(images),
        "kind_load_host_half": {"bytes": load_bytes, "seconds": round(load_s, 2)},
        "registry_push": {"bytes_stored": stored, "blob_uploads": push_uploads, "seconds": round(push_s, 2)},
        "registry_push_again": {"blob_uploads": uploads() - push_uploads, "seconds": round(again_s, 2)},
        "bytes_ratio_push_to_load": round(stored / load_bytes, 4),
        "seconds_ratio_push_to_load": round(push_s / load_s, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--base", default=os.environ.get("BASE_IMAGE", "localhost/python-base:bookworm"))
    parser.add_argument("--example", action="store_true", help="the example's images instead")
    args = parser.parse_args()
    if shutil.which("docker-registry") is None:
        print("docker-registry is not installed (apt-get install docker-registry)", file=sys.stderr)
        return 1
    prefix = f"sgbench-{secrets.token_hex(3)}"
    work = Path(tempfile.mkdtemp(prefix="push-vs-load-"))
    port = free_port()
    (work / "config.yml").write_text(
        f"version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {work / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    with open(work / "registry.log", "wb") as log:  # the child keeps its own descriptor
        registry = subprocess.Popen(
            ["docker-registry", "serve", str(work / "config.yml")], stdout=log, stderr=log
        )
    images: list[str] = []
    owned: list[str] = []  # what this script made and removes again
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        if args.example:
            images = example_images(work)
            case, owned = "example", []  # the example's tags stay: the next build finds them
        else:
            images = synthetic_images(work, prefix, args.images, args.base)
            case, owned = f"shared_base_{args.images}", images
        result = measure(images, work, port)
    finally:
        registry.terminate()
        registry.wait(10)
        if images:
            subprocess.run(
                ["docker", "image", "rm", "-f", *owned, *(f"127.0.0.1:{port}/{i}" for i in images)],
                capture_output=True,
            )
        shutil.rmtree(work, ignore_errors=True)
    path = HERE / "push_vs_load.json"
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        document = {}
    document = document if "cases" in document else {"cases": {}}
    document["cases"][case] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "base": None if args.example else args.base,
        "refs": images if args.example else None,
        **result,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(document["cases"][case], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
