"""Secret build args: which ones are secret, what the inputs file keeps of them, and the
Docker connection that drops mid-build (its error carries the request URL with the build args),
as recorded: the daemon gone, the URL redacted. The connection dropped for real, redacted in
every file and line it reaches: tests/integration/test_build_secrets.py."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from stagegate import hashing, redact
from stagegate.builder import BuildFailure
from stagegate.config import load_config
from stagegate.errors import Code, StagegateError
from stagegate.imageinputs import image_inputs, save_inputs

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "build-output"
# The token of the recorded fixture (a fake one, made up for the recording).
TOKEN = "npm_FAKE0123456789abcdef"


@pytest.fixture(autouse=True)
def _fresh_registry():
    redact.SECRETS.clear()
    yield
    redact.SECRETS.clear()


def recorded(name: str) -> str:
    lines = (FIXTURES / name).read_text().splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith("#fixture:"))


def repo(root: Path, build_args: str, extra: str = "") -> Path:
    (root / "app").mkdir(parents=True)
    (root / "app" / "Dockerfile").write_text("FROM busybox\nARG NPM_TOKEN\nRUN true\n")
    (root / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""\
            [tool.stagegate]
            [[tool.stagegate.images]]
            name = "t/app"
            context = "app"
            build_args = {build_args}
            {extra}
            """
        )
    )
    return root


def test_secret_build_args_are_those_configured_and_those_named_like_secrets(tmp_path: Path) -> None:
    root = repo(
        tmp_path,
        '{ NPM_TOKEN = "${T}", NPM_AUTH = "auth-value-1", KEYBOARD_LAYOUT = "us-intl", BASE = "x" }',
        'secret_build_args = ["NPM_AUTH"]',
    )
    spec = load_config(root, {"T": TOKEN}).images["t/app"]
    assert spec.secret_build_args == {"NPM_TOKEN", "NPM_AUTH"}
    # registered as soon as the config is resolved
    assert redact.redact(f"{TOKEN} auth-value-1 us-intl") == "<redacted> <redacted> us-intl"


def test_secret_build_args_must_name_a_build_arg(tmp_path: Path) -> None:
    root = repo(tmp_path, '{ NPM_AUTH = "x" }', 'secret_build_args = ["NPM_AUHT"]')
    with pytest.raises(StagegateError) as raised:
        load_config(root, {})
    assert raised.value.code == Code.CONFIG_INVALID
    assert raised.value.subject["key"] == "tool.stagegate.images[0].secret_build_args[0]"
    assert "NPM_AUTH" in raised.value.hint


def test_the_inputs_file_keeps_a_fingerprint_and_a_rotated_token_changes_the_hash(tmp_path: Path) -> None:
    root = repo(tmp_path, '{ NPM_TOKEN = "${T}", BASE = "plain" }')

    def inputs(token: str) -> hashing.Inputs:
        spec = load_config(root, {"T": token}).images["t/app"]
        return image_inputs(spec, {}, lambda ref: "sha256:base", hasher=hashing.ContextHasher(None))[1]

    first = inputs(TOKEN)
    assert first.build_args == {"NPM_TOKEN": redact.fingerprint(TOKEN), "BASE": "plain"}
    save_inputs(tmp_path / "inputs", "t/app", first)
    assert TOKEN not in (tmp_path / "inputs" / "t-app.json").read_text()
    rotated = inputs(TOKEN + "-rotated")
    assert rotated.digest() != first.digest()  # as Docker's own cache keys include build args
    assert rotated.changes_since(first) == ["build arg NPM_TOKEN changed"]


def test_the_recorded_dropped_connection_is_the_daemon_gone_and_its_url_is_redacted() -> None:
    output = recorded("legacy-connection-dropped.txt")
    assert TOKEN in output  # URL-encoded in the request URL the CLI repeats
    failure = BuildFailure(["docker", "build", "--build-arg", f"NPM_TOKEN={TOKEN}", "app"], 1, output)
    assert failure.daemon_down
    redact.register(TOKEN)
    assert TOKEN not in redact.redact(output) and "buildargs=<redacted>" in redact.redact(output)
