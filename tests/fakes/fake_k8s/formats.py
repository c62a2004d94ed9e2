"""The formats the Go tools print that both fakes share: digests and uids, kube's random-looking
names, RFC 3339 times, Go and kubectl durations, and image references as containerd names them."""

from __future__ import annotations

import calendar
import hashlib
import re
import time
import uuid


def digest(*parts: object) -> str:
    return hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()


def uid_of(*parts: object) -> str:
    return str(uuid.UUID(digest(*parts)[:32]))


# k8s: apimachinery/pkg/util/rand SafeEncodeString's alphabet (pod-template-hash, name suffixes).
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def safe_name(length: int, *parts: object) -> str:
    number = int(digest(*parts), 16)
    chars = []
    for _ in range(length):
        number, index = divmod(number, len(SAFE_ALPHABET))
        chars.append(SAFE_ALPHABET[index])
    return "".join(chars)


def rfc3339(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def go_duration(seconds: float) -> str:
    """Go's time.Duration.String() for whole seconds: 40s, 1m20s, 5m0s, 1h0m0s."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60}s"
    return f"{s // 3600}h{s % 3600 // 60}m{s % 60}s"


def parse_go_duration(text: str) -> float | None:
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    if text == "0":
        return 0.0
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * units[u] for n, u in parts)


def human_duration(seconds: float) -> str:
    """k8s: apimachinery/pkg/util/duration.HumanDuration (the AGE of kubectl)."""
    s = max(int(seconds), 0)
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    return f"{hours // 24}d"


def normalized_image(ref: str) -> str:
    """The reference as containerd names it: busybox:1 -> docker.io/library/busybox:1."""
    name, sep, rest = ref.partition("@")
    tag = ""
    if ":" in name.rsplit("/", 1)[-1]:
        name, tag = name.rsplit(":", 1)
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    if sep:
        return f"{name}@{rest}"
    return f"{name}:{tag or 'latest'}"


def to_epoch(value: str) -> float:
    return calendar.timegm(time.strptime(value, "%Y-%m-%dT%H:%M:%SZ"))
