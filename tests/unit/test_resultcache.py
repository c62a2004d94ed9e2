"""The e2e result cache's key over real files of a scratch repository: it changes for each
input it covers, and not for files that cannot change the outcome; local records, and how a
miss is explained."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console
from stagegate import cli, resultcache
from stagegate.config import load_config
from stagegate.errors import Code, StagegateError
from stagegate.reports import RunReport, markdown_summary, write_junit
from stagegate.resultcache import CacheKey, LocalRecords, PassRecord, explain_miss, key_parts
from stagegate.ui import Reporter

from tests.conftest import Repo

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: demo}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: demo/web
          command: ["httpd", "-f"]
"""
IMAGES = {
    "demo/web": {"status": "up to date", "ref": "demo/web:sg-aaa", "image_id": "sha256:" + "1" * 64},
    "demo/db": {"status": "built", "ref": "demo/db:sg-bbb", "image_id": "sha256:" + "2" * 64},
}


def scratch(repo: Repo, extra: str = "", e2e: str = "") -> None:
    repo.write("web/Dockerfile", "FROM scratch\n")
    repo.write("db/Dockerfile", "FROM scratch\n")
    repo.write("k8s/web.yaml", MANIFEST)
    repo.write("e2e/test_web.py", "def test_web():\n    assert True\n")
    repo.write("e2e/conftest.py", "")
    repo.write("kind.yaml", "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n")
    repo.write("README.md", "demo\n")
    repo.config(
        '[[tool.stagegate.images]]\nname = "demo/web"\ncontext = "web"\n'
        '[[tool.stagegate.images]]\nname = "demo/db"\ncontext = "db"\n'
        '[tool.stagegate.cluster]\nkind_config = "kind.yaml"\nnode_image = "kindest/node:v1.32.2"\n'
        '[tool.stagegate.deploy]\nmanifests = "k8s"\n'
        '[tool.stagegate.e2e]\ncommand = ["pytest", "e2e", "-q"]\nrequirements = ["pytest>=8"]\ncache = true\n'
        + e2e
        + extra
    )


def key(repo: Repo, images=IMAGES, target: str = "docker", profile: str | None = None, **kw) -> CacheKey:
    return CacheKey(
        key_parts(load_config(repo.root, {}), images, target, profile=profile, version="1.0", **kw)
    )


def edit(repo: Repo, relpath: str, old: str, new: str) -> None:
    path = repo.root / relpath
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def add(repo: Repo, relpath: str, text: str) -> dict:
    repo.write(relpath, text)
    return {}


def test_the_same_inputs_give_the_same_key(repo: Repo) -> None:
    scratch(repo)
    assert key(repo).digest == key(repo).digest
    assert len(key(repo).digest) == 64


# Files that cannot change the outcome: the key stays.
UNRELATED: dict[str, Callable[[Repo], None]] = {
    "a README": lambda repo: repo.write("README.md", "demo, edited\n"),
    "a file beside the e2e folder": lambda repo: repo.write("notes/todo.txt", "later\n"),
    "the e2e run's bytecode": lambda repo: repo.write("e2e/__pycache__/test_web.cpython-311.pyc", "x"),
    "pytest's own cache in the e2e folder": lambda repo: repo.write("e2e/.pytest_cache/v/lastfailed", "{}"),
    "an image's Dockerfile (its image ID says it)": lambda repo: repo.write(
        "web/Dockerfile", "FROM busybox\n"
    ),
}


@pytest.mark.parametrize("change", list(UNRELATED), ids=list(UNRELATED))
def test_a_file_that_cannot_change_the_outcome_keeps_the_key(repo: Repo, change: str) -> None:
    scratch(repo)
    before = key(repo)
    UNRELATED[change](repo)
    assert key(repo).digest == before.digest


def _other_image(repo: Repo) -> dict:
    return {**IMAGES, "demo/web": {**IMAGES["demo/web"], "image_id": "sha256:" + "3" * 64}}


# Each input the key covers: (change, the part a miss names). Each case changes one thing.
COVERED: dict[str, tuple[Callable[[Repo], dict], str]] = {
    "image content": (lambda repo: {"images": _other_image(repo)}, "image demo/web changed"),
    "a manifest line": (
        lambda repo: edit(repo, "k8s/web.yaml", '"-f"]', '"-f", "-v"]') or {},
        "manifest Deployment demo/web changed",
    ),
    "a new manifest object": (
        lambda repo: add(repo, "k8s/ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: demo}\n"),
        "manifest Namespace demo added",
    ),
    "a line of an e2e test file": (
        lambda repo: edit(repo, "e2e/test_web.py", "assert True", "assert 1") or {},
        "e2e file e2e/test_web.py changed",
    ),
    "a new e2e file": (
        lambda repo: add(repo, "e2e/test_more.py", "def test_more():\n    pass\n") or {},
        "e2e file e2e/test_more.py added",
    ),
    "the e2e command": (
        lambda repo: edit(repo, "pyproject.toml", '"e2e", "-q"]', '"e2e", "-x"]') or {},
        "e2e command changed",
    ),
    "the e2e requirements": (
        lambda repo: edit(repo, "pyproject.toml", '"pytest>=8"', '"pytest>=8", "requests"') or {},
        "e2e settings changed",
    ),
    "the target kind": (lambda repo: {"target": "kind"}, "target changed"),
    "the kind node image": (
        lambda repo: edit(repo, "pyproject.toml", "v1.32.2", "v1.31.0") or {"target": "kind", "base": "kind"},
        "target changed",
    ),
    "the kind config's content": (
        lambda repo: (
            edit(repo, "kind.yaml", "v1alpha4\n", "v1alpha4\nnodes: [{role: control-plane}]\n")
            or {"target": "kind", "base": "kind"}
        ),
        "target changed",
    ),
    "the profile": (lambda repo: {"profile": "smoke"}, "profile changed"),
    "stagegate's version": (lambda repo: {"version": "1.1"}, "stagegate changed"),
    "the readiness policy": (
        lambda repo: (
            edit(repo, "pyproject.toml", 'manifests = "k8s"\n', 'manifests = "k8s"\ntimeout = 60\n') or {}
        ),
        "readiness policy changed",
    ),
}


@pytest.mark.parametrize("change", list(COVERED), ids=list(COVERED))
def test_each_input_it_covers_changes_the_key_and_a_miss_names_it(repo: Repo, change: str) -> None:
    scratch(repo)
    apply, named = COVERED[change]
    base = "kind" if change in ("the kind node image", "the kind config's content") else "docker"
    before = key(repo, target=base)
    changed = apply(repo)
    changed.pop("base", None)
    version = changed.pop("version", "1.0")
    after = CacheKey(
        key_parts(
            load_config(repo.root, {}),
            changed.pop("images", IMAGES),
            changed.pop("target", base),
            profile=changed.pop("profile", None),
            version=version,
        )
    )
    assert after.digest != before.digest
    earlier = PassRecord(key=before.digest, parts=dict(before.parts), run_id="r1", passed_at="t")
    assert explain_miss(after.parts, earlier).startswith(named), explain_miss(after.parts, earlier)


def test_the_existing_target_keys_images_by_their_registry_digest(repo: Repo) -> None:
    scratch(repo)
    pinned = {
        name: {**entry, "registry": {"pinned": f"reg.example/{name}@sha256:" + str(i) * 64}}
        for i, (name, entry) in enumerate(IMAGES.items(), start=4)
    }
    parts = key(repo, pinned, target="existing", context="ci").parts
    assert parts["image demo/web"] == "sha256:" + "4" * 64
    moved = {
        **pinned,
        "demo/web": {**pinned["demo/web"], "registry": {"pinned": "reg.example/demo/web@sha256:" + "9" * 64}},
    }
    assert (
        key(repo, moved, target="existing", context="ci").digest
        != key(repo, pinned, target="existing", context="ci").digest
    )
    assert (
        key(repo, pinned, target="existing", context="other").digest
        != key(repo, pinned, target="existing", context="ci").digest
    )


def test_configured_inputs_decide_which_files_count(repo: Repo) -> None:
    scratch(repo, e2e='inputs = ["e2e", "helpers.py"]\n')
    repo.write("helpers.py", "URL = 1\n")
    before = key(repo)
    repo.write("helpers.py", "URL = 2\n")
    assert key(repo).digest != before.digest
    scratch(repo)  # without it in inputs, the same edit is not seen
    repo.write("helpers.py", "URL = 1\n")
    before = key(repo)
    repo.write("helpers.py", "URL = 3\n")
    assert key(repo).digest == before.digest


def test_the_default_inputs_are_the_command_s_paths(repo: Repo) -> None:
    scratch(repo)
    assert load_config(repo.root, {}).e2e.inputs == ((repo.root / "e2e").resolve(),)
    # a script of the repository that is the command itself counts too
    repo.write("ci/e2e.sh", "#!/bin/sh\npytest e2e\n")
    edit(repo, "pyproject.toml", 'command = ["pytest", "e2e", "-q"]', 'command = ["./ci/e2e.sh", "--fast"]')
    assert load_config(repo.root, {}).e2e.inputs == ((repo.root / "ci" / "e2e.sh").resolve(),)


def test_cache_without_a_known_e2e_file_is_a_config_error(repo: Repo) -> None:
    scratch(repo)
    edit(repo, "pyproject.toml", 'command = ["pytest", "e2e", "-q"]', 'command = ["make", "e2e-tests"]')
    with pytest.raises(StagegateError) as caught:
        load_config(repo.root, {})
    assert caught.value.code == Code.CONFIG_INVALID
    assert "inputs" in caught.value.hint
    edit(repo, "pyproject.toml", "cache = true", "cache = false")
    assert load_config(repo.root, {}).e2e.inputs == ()  # without the cache, nothing is required


def test_inputs_outside_the_repository_are_refused(repo: Repo) -> None:
    scratch(repo, e2e='inputs = ["../elsewhere"]\n')
    with pytest.raises(StagegateError) as caught:
        load_config(repo.root, {})
    assert caught.value.subject["key"] == "tool.stagegate.e2e.inputs"


def test_cache_dir_is_configurable_and_outside_the_artifacts_dir(tmp_path: Path) -> None:
    assert resultcache.cache_dir({"STAGEGATE_CACHE_DIR": str(tmp_path / "c")}) == tmp_path / "c"
    assert resultcache.cache_dir({"XDG_CACHE_HOME": str(tmp_path / "x")}) == tmp_path / "x" / "stagegate"
    assert resultcache.cache_dir({"HOME": str(tmp_path)}) == tmp_path / ".cache" / "stagegate"


def record(key: str, parts: dict, run_id: str = "r1") -> PassRecord:
    return PassRecord(
        key=key, parts=parts, run_id=run_id, passed_at="2026-01-01T00:00:00Z", git={"sha": "abc"}
    )


def test_local_records_round_trip_and_ignore_what_they_cannot_read(tmp_path: Path) -> None:
    records = LocalRecords(tmp_path / "records")
    assert records.find("k1") is None
    records.store(record("k1", {"a": 1}))
    assert records.find("k1").run_id == "r1"
    (tmp_path / "records" / "k2.json").write_text("{not json")
    assert records.find("k2") is None
    (tmp_path / "records" / "k3.json").write_text(record("other", {}).model_dump_json())
    assert records.find("k3") is None  # a record under a name that is not its key


def test_the_nearest_earlier_pass_explains_a_miss(tmp_path: Path) -> None:
    records = LocalRecords(tmp_path)
    records.store(record("k1", {"image a": "1", "e2e file e2e/t.py": "x", "target": "d"}, "far"))
    records.store(record("k2", {"image a": "1", "e2e file e2e/t.py": "y", "target": "d"}, "near"))
    now = {"image a": "1", "e2e file e2e/t.py": "y", "target": "kind"}
    nearest = records.nearest(now)
    assert nearest.run_id == "near"
    assert (
        explain_miss(now, nearest) == "target changed since run near (passed 2026-01-01T00:00:00Z, git abc)"
    )


# -- what the reports and the e2e session make of a stage passed from the cache ----------------

REUSED = {
    "run_id": "20261128T200000Z-abcdef",
    "passed_at": "2026-11-28T20:03:00Z",
    "git": {"sha": "0123456789abcdef", "dirty": False},
    "key": "k" * 64,
    "source": "local",
    "tests": {"ran": 4},
}


def cached_run(tmp_path: Path, cached: bool) -> RunReport:
    outputs = {"cached": REUSED} if cached else {"tests": {"exit_code": 0}}
    stages = {
        name: {"status": "passed", "duration_s": 0.1, "outputs": outputs} for name in ("cluster", "e2e")
    }
    tmp_path.mkdir(exist_ok=True)
    return RunReport(tmp_path, {"run_id": "20261129T000000Z-123456", "stages": stages}, None)


@pytest.mark.parametrize("cached", [True, False], ids=["cached", "ran"])
def test_reports_name_the_reused_run_only_for_a_stage_passed_from_the_cache(
    tmp_path: Path, cached: bool
) -> None:
    run = cached_run(tmp_path, cached)
    junit = write_junit(run).read_text()
    named = "passed from the e2e result cache: run 20261128T200000Z-abcdef (passed 2026-11-28T20:03:00Z, git 0123456789ab)"
    assert (junit.count(named) == 2) is cached
    assert "<failure" not in junit and "<skipped" not in junit
    markdown = markdown_summary(run)
    assert ("| e2e | ✅ passed (cached: run `20261128T200000Z-abcdef`) |" in markdown) is cached
    reporter = Reporter(Console(file=io.StringIO(), width=200, force_terminal=False))
    reporter.summary(run.run, None, tmp_path)
    shown = reporter.console.file.getvalue()
    assert ("from the e2e result cache: run 20261128T200000Z-abcdef (git 0123456789ab)" in shown) is cached


@pytest.mark.parametrize("cached", [True, False], ids=["cached", "ran"])
def test_the_e2e_session_installs_nothing_when_the_run_reuses_a_pass(
    repo: Repo, cached: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STAGEGATE_ARTIFACTS", raising=False)
    scratch(repo)
    outputs = {"target": "docker", **({"cached": REUSED} if cached else {})}
    ledger = {
        "schema_version": 1,
        "run_id": "r",
        "profile": None,
        "stages": {"cluster": {"outputs": outputs}},
    }
    repo.write(".stagegate/run.json", json.dumps(ledger))
    assert cli.e2e_requirements(repo.root) == ([] if cached else ["pytest>=8"])


def test_a_smoke_pass_is_keyed_by_the_image_and_how_the_command_runs_in_it() -> None:
    key = resultcache.smoke_key("sha256:aaa", ["test", "-d", "/www"], None, 30.0).digest

    assert resultcache.smoke_key("sha256:aaa", ("test", "-d", "/www"), None, 30.0).digest == key
    for changed in (
        resultcache.smoke_key("sha256:bbb", ["test", "-d", "/www"], None, 30.0),
        resultcache.smoke_key("sha256:aaa", ["test", "-d", "/srv"], None, 30.0),
        resultcache.smoke_key("sha256:aaa", ["test", "-d", "/www"], "image", 30.0),
        resultcache.smoke_key("sha256:aaa", ["test", "-d", "/www"], None, 5.0),
    ):
        assert changed.digest != key
