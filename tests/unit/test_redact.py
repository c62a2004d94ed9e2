"""The one redaction function: every form a secret takes in what programs print, and the
writers that go through it (ledger, atomic files, runner logs and failures, the terminal)."""

from __future__ import annotations

import base64
import io
import json
import logging
import sys
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from rich.console import Console
from stagegate import redact, runner
from stagegate.errors import Code, CommandEvidence, StagegateError
from stagegate.ledger import Ledger, write_json_atomic, write_text_atomic
from stagegate.redact import MIN_LENGTH, REDACTED, Secrets, fingerprint, is_secret_name
from stagegate.ui import Reporter

TOKEN = "npm_FAKE0123456789abcdef"


@pytest.fixture(autouse=True)
def _no_secrets_of_other_tests():
    """Each test starts from an empty registry: a test must pass by its own registrations."""
    redact.SECRETS.clear()
    yield
    redact.SECRETS.clear()


@pytest.fixture
def secrets() -> Secrets:
    registry = Secrets()
    registry.register(TOKEN)
    return registry


def test_a_registered_value_is_replaced(secrets: Secrets) -> None:
    assert secrets.redact(f"curl -H 'Authorization: {TOKEN}' x") == f"curl -H 'Authorization: {REDACTED}' x"
    assert secrets.redact("nothing secret here") == "nothing secret here"


@pytest.mark.parametrize("encode", [base64.b64encode, base64.urlsafe_b64encode])
@pytest.mark.parametrize("prefix", [b"", b"a", b"ab", b"abc", b'{"auths":{"r":{"auth":"'])
def test_its_base64_is_replaced_at_any_alignment_inside_a_longer_text(
    secrets: Secrets, encode, prefix: bytes
) -> None:
    encoded = encode(prefix + TOKEN.encode() + b'"}}}').decode()
    redacted = secrets.redact(f"data: {encoded}")
    assert REDACTED in redacted
    # what is left cannot give the token back: no 6 consecutive bytes of it decode from it
    for piece in redacted.removeprefix("data: ").split(REDACTED):
        assert TOKEN[:MIN_LENGTH] not in base64.b64decode(piece + "===", altchars=b"-_").decode("latin-1")


def test_its_url_and_json_encoded_forms_are_replaced() -> None:
    secrets = Secrets()
    value = 'p@ss w/rd&"<x>'
    secrets.register(value)
    escaped = json.dumps(value)[1:-1]
    for form in (quote(value, safe=""), quote_plus(value, safe=""), escaped, quote_plus(escaped, safe="")):
        assert secrets.redact(f"..{form}..") == f"..{REDACTED}..", form


def test_a_docker_api_url_loses_its_buildargs_whatever_they_hold() -> None:
    url = 'Post "http://%2Fvar%2Frun%2Fdocker.sock/v1.41/build?buildargs=%7B%22X%22%3A%22y%22%7D&q=1": EOF'
    assert (
        Secrets().redact(url)
        == f'Post "http://%2Fvar%2Frun%2Fdocker.sock/v1.41/build?buildargs={REDACTED}&q=1": EOF'
    )


def test_overlapping_and_nested_values_leave_no_part_of_either() -> None:
    secrets = Secrets()
    secrets.register("abcdef123")
    secrets.register("123456xyz")
    secrets.register("cdef12")  # inside the first
    assert secrets.redact("<<abcdef123456xyz>>") == f"<<{REDACTED}>>"
    assert secrets.redact("abcdef123 and 123456xyz") == f"{REDACTED} and {REDACTED}"


def test_short_and_empty_values_are_not_registered() -> None:
    secrets = Secrets()
    for value in ("", "1", "true", "admin"):  # all shorter than MIN_LENGTH
        secrets.register(value)
    text = "admin: true, retries 1"
    assert secrets.redact(text) == text
    secrets.register("admin1")
    assert secrets.redact("user admin1") == f"user {REDACTED}"


def test_a_secret_name_hides_its_value_however_short_it_is() -> None:
    secrets = Secrets()
    secrets.register_name("NPM_AUTH")  # configured: not named like a secret
    text = "docker build --build-arg NPM_TOKEN=abc --build-arg NPM_AUTH=xy --build-arg BASE=busybox ."
    assert secrets.redact(text) == (
        f"docker build --build-arg NPM_TOKEN={REDACTED} --build-arg NPM_AUTH={REDACTED} --build-arg BASE=busybox ."
    )
    assert secrets.redact("--build-arg=API_KEY=k=v") == f"--build-arg=API_KEY={REDACTED}"
    assert secrets.redact_json({"argv": ["docker", "--build-arg", "DB_PASSWORD=pw"]}) == {
        "argv": ["docker", "--build-arg", f"DB_PASSWORD={REDACTED}"]
    }


@pytest.mark.parametrize(
    "name",
    [
        "NPM_TOKEN",
        "GITHUB_TOKEN",
        "token",
        "AWS_SECRET_ACCESS_KEY",
        "api-key",
        "APIKEY",
        "dbPassword",
        "PASSWD",
    ],
)
def test_names_that_say_secret(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name", ["KEYBOARD_LAYOUT", "MONKEY", "TOKENIZER_MODEL", "BASE_IMAGE", "PASSTHROUGH"]
)
def test_names_that_only_look_alike(name: str) -> None:
    assert not is_secret_name(name)


def test_a_fingerprint_tells_a_change_and_holds_no_value() -> None:
    assert fingerprint(TOKEN) == fingerprint(TOKEN)
    assert fingerprint(TOKEN) != fingerprint(TOKEN + "x")
    assert TOKEN not in fingerprint(TOKEN) and fingerprint(TOKEN).startswith("sha256:")


def test_a_multi_line_secret_is_redacted_line_by_line() -> None:
    secrets = Secrets()
    secrets.register("-----BEGIN KEY-----\nMIIEabcdefghij\n-----END KEY-----\n")
    assert "MIIEabcdefghij" not in secrets.redact("a log line with MIIEabcdefghij in it")


# -- terminal escapes: what records and reports quote -------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\x1b[91m./app.go:15:17: cannot use x\x1b[0m", "./app.go:15:17: cannot use x"),
        ("\x1b[1;31mbold\x1b[0m \x1b[2K\x1b[1Gcursor", "bold cursor"),
        ("\x1b]8;;https://x\x1b\\link\x1b]8;;\x1b\\ and \x1b]0;title\x07done", "link and done"),
        ("\x9b31mred", "red"),
        ("progress 10%\rprogress 55%\rprogress 100%\nnext", "progress 100%\nnext"),
        ("lone \x1b escape\x07, bell\x00\x7f\x85.", "lone  escape, bell."),
    ],
)
def test_terminal_escapes_are_stripped_and_their_text_kept(text: str, expected: str) -> None:
    assert redact.strip_escapes(text) == expected


@pytest.mark.parametrize(
    "text", ["plain text", "tab\tand\nnewline", "crlf\r\nline", "trailing cr\r", "é 😀 ✓ │ [==> ] 100%", ""]
)
def test_text_without_escapes_is_left_as_it_is(text: str) -> None:
    assert redact.strip_escapes(text) == text


def test_clean_redacts_and_strips_and_clean_json_keeps_the_keys() -> None:
    redact.register(TOKEN)
    assert redact.clean(f"\x1b[31mtoken {TOKEN}\x1b[0m") == f"token {REDACTED}"
    assert redact.clean_json({"\x1b[1mkey": [f"\x1b[1m{TOKEN}", 3, None]}) == {
        "\x1b[1mkey": [REDACTED, 3, None]
    }


def test_error_json_holds_the_text_without_escapes_and_run_json_is_redacted_only(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "artifacts")
    ledger.begin("preflight", git={"sha": None, "dirty": None}, options={})
    ledger.record_failure(
        "preflight",
        StagegateError(
            Code.BUILD_FAILED,
            "app: \x1b[91mfailed\x1b[0m",
            "hint",
            {"output": ["\x1b[91m./app.go:15:17: cannot use x\x1b[0m"]},
            log_excerpt="10%\r100%\n\x1b[91m./app.go:15:17: cannot use x\x1b[0m",
        ),
        1.0,
        {"detail": "\x1b[1mkept\x1b[0m"},
    )
    written = (tmp_path / "artifacts" / "error.json").read_text()
    error = json.loads(written)
    assert "\\u001b" not in written and "\\r" not in written
    assert error["message"] == "app: failed" and error["subject"]["output"] == [
        "./app.go:15:17: cannot use x"
    ]
    assert error["log_excerpt"] == "100%\n./app.go:15:17: cannot use x"
    run = json.loads((tmp_path / "artifacts" / "run.json").read_text())
    assert run["stages"]["preflight"]["outputs"]["detail"] == "\x1b[1mkept\x1b[0m"


# -- the writers ---------------------------------------------------------------------------------


def test_atomic_files_and_the_ledger_are_written_redacted(tmp_path: Path) -> None:
    redact.register(TOKEN)
    write_text_atomic(tmp_path / "a.txt", f"token {TOKEN}\n")
    write_json_atomic(tmp_path / "b.json", {"argv": ["docker", "--build-arg", "NPM_TOKEN=ab"], "v": TOKEN})
    ledger = Ledger(tmp_path / "artifacts")
    ledger.begin("preflight", git={"sha": None, "dirty": None}, options={})
    document = ledger.record_failure(
        "preflight",
        StagegateError(
            Code.DOCKER_UNAVAILABLE,
            f"lost the engine: ?buildargs=%7B%7D {TOKEN}",
            f"hint {TOKEN}",
            {"reason": TOKEN},
            command=CommandEvidence(["docker", "build", "--build-arg", f"NPM_TOKEN={TOKEN}"], 1),
            log_excerpt=base64.b64encode(TOKEN.encode()).decode(),
        ),
        1.0,
        {"detail": TOKEN},
    )
    written = "".join(path.read_text() for path in tmp_path.rglob("*") if path.is_file())
    assert TOKEN not in written and "NPM_TOKEN=ab" not in written
    assert base64.b64encode(TOKEN.encode()).decode() not in written
    assert TOKEN not in json.dumps(document)
    assert document["command"]["argv"][-1] == f"NPM_TOKEN={REDACTED}"


def test_runner_logs_and_failures_are_redacted(tmp_path: Path) -> None:
    redact.register(TOKEN)
    log_file = tmp_path / "cmd.log"
    script = f"import sys; print('out {TOKEN}'); print('err {TOKEN}', file=sys.stderr); sys.exit(3)"
    with pytest.raises(runner.CommandFailed) as failed:
        runner.run([sys.executable, "-c", script, f"API_KEY={TOKEN}"], log_file=log_file)
    evidence = " ".join([*failed.value.argv, failed.value.stdout, failed.value.stderr, str(failed.value)])
    assert TOKEN not in evidence and REDACTED in failed.value.stderr
    assert TOKEN not in log_file.read_text() and "err <redacted>" in log_file.read_text()
    # what a caller parses is the program's own output
    ok = runner.run([sys.executable, "-c", f"print('{TOKEN}')"], log_file=log_file)
    assert ok.stdout.strip() == TOKEN and TOKEN not in log_file.read_text()


def test_background_output_is_logged_redacted(tmp_path: Path) -> None:
    redact.register(TOKEN)
    log_file = tmp_path / "bg.log"
    result = runner.stream(
        [sys.executable, "-c", f"print('line {TOKEN}')"], on_line=lambda line: None, log_file=log_file
    )
    assert result.exit_code == 0
    assert TOKEN not in log_file.read_text() and f"line {REDACTED}" in log_file.read_text()


def test_stdin_input_reaches_the_program_and_not_the_log(tmp_path: Path) -> None:
    redact.register(TOKEN)
    log_file = tmp_path / "in.log"
    result = runner.run(
        [sys.executable, "-c", "import sys; print(len(sys.stdin.read()))"], input=TOKEN, log_file=log_file
    )
    assert result.stdout.strip() == str(len(TOKEN)) and TOKEN not in log_file.read_text()


def test_every_line_the_terminal_shows_is_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    redact.register(TOKEN)
    reporter = Reporter(Console(file=io.StringIO(), width=200, force_terminal=False))
    reporter.stage_started("build", f"with {TOKEN}")
    reporter.info(f"info {TOKEN}")
    reporter.warning(f"warning {TOKEN}")
    reporter.passthrough(f"e2e says {TOKEN}")
    reporter.internal_error(f"Traceback … {TOKEN}")
    progress = reporter.build_progress(["x"])
    progress.update("x", "failed", f"x: RUN echo {TOKEN} failed")
    reporter.summary(
        {"run_id": "r", "stages": {"build": {"status": "failed", "duration_s": 1.0, "outputs": {}}}},
        {"code": "BUILD_FAILED", "message": f"m {TOKEN}", "hint": f"h {TOKEN}", "log_file": None},
        Path("."),
    )
    reporter.workflow_command(f"::error ::{TOKEN}")
    shown = reporter.console.file.getvalue() + capsys.readouterr().out
    assert TOKEN not in shown
    assert shown.count(REDACTED) == 9


def test_log_records_reach_the_root_handlers_redacted() -> None:
    redact.register("hunter2-secret-value")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        redact.redact_logging()
        redact.redact_logging()  # once is enough: no second filter
        assert sum(isinstance(f, redact.RedactingFilter) for f in handler.filters) == 1
        logging.getLogger("stagegate.somewhere").warning("could not write %s", "hunter2-secret-value")
    finally:
        root.removeHandler(handler)
    assert stream.getvalue() == "could not write <redacted>\n"
