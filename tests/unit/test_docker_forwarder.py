"""The docker target's Service port forwarder as shipped: one binary per engine architecture,
each the static Linux program its committed source builds (no engine needed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from stagegate.errors import Code, StagegateError
from stagegate.targets.docker.forwarder import SOURCE_DIR, binary

# ELF e_machine values (the System V ABI's table): what each binary must be compiled for
ELF_MACHINES = {"amd64": 0x3E, "arm64": 0xB7}
PT_INTERP, PT_LOAD = 3, 1


def _segment_types(elf: bytes) -> list[int]:
    """The p_type of each program header of a 64-bit little-endian ELF file."""
    offset = int.from_bytes(elf[32:40], "little")
    size, count = int.from_bytes(elf[54:56], "little"), int.from_bytes(elf[56:58], "little")
    return [int.from_bytes(elf[offset + i * size : offset + i * size + 4], "little") for i in range(count)]


@pytest.mark.parametrize(
    ("architecture", "goarch"),
    [("x86_64", "amd64"), ("amd64", "amd64"), ("aarch64", "arm64"), ("arm64", "arm64")],
)
def test_the_binary_of_the_engines_architecture_is_a_static_linux_program_for_it(
    architecture: str, goarch: str
) -> None:
    content = binary(architecture).read_bytes()
    assert content[:5] == b"\x7fELF\x02"  # ELF, 64-bit
    assert int.from_bytes(content[18:20], "little") == ELF_MACHINES[goarch]
    assert PT_LOAD in _segment_types(content) and PT_INTERP not in _segment_types(
        content
    )  # no dynamic loader: runs in a scratch image


def test_an_engine_of_another_architecture_is_refused_naming_it() -> None:
    with pytest.raises(StagegateError) as caught:
        binary("s390x")
    assert caught.value.code == Code.MANIFEST_UNSUPPORTED
    assert "this engine is s390x" in caught.value.message
    assert "port == targetPort" in caught.value.hint


def test_the_committed_binaries_are_what_their_source_builds(tmp_path: Path) -> None:
    go = shutil.which("go")
    if go is None:
        pytest.skip("go is not on PATH (CI installs Debian's golang-go)")
    made_with = (SOURCE_DIR / "bin" / "BUILT_WITH").read_text().strip()
    version = subprocess.run(
        [go, "env", "GOVERSION"], capture_output=True, text=True, check=True
    ).stdout.strip()
    if version != made_with:
        pytest.skip(f"the binaries were built with {made_with}; {version} makes other bytes")
    copy = tmp_path / "tcp-forwarder"
    shutil.copytree(SOURCE_DIR, copy, ignore=shutil.ignore_patterns("bin"))
    subprocess.run(["sh", str(copy / "build.sh")], check=True, capture_output=True, timeout=600)
    for name in ("tcp-forwarder-linux-amd64", "tcp-forwarder-linux-arm64", "BUILT_WITH"):
        assert (copy / "bin" / name).read_bytes() == (SOURCE_DIR / "bin" / name).read_bytes(), name
