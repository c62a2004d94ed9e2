"""The registry as the build's content-addressed cache, against a real registry (Debian's
docker-registry on 127.0.0.1) and the real engine: a cold engine (this test's images removed)
with a warm registry pulls instead of building; a changed image is built, the rest pulled;
``cache = false`` builds everything; the existing target records digests and pulls nothing; a
registry that does not answer never fails the build; a dependency enters its dependents' tags by
its input hash, so two clones in different folders (and two builds of a base that is not
reproducible) give the same tags; a build takes layers from the registry's previous image."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from python_on_whales import DockerClient

from tests.conftest import Repo, listed_meanwhile, remove_images
from tests.integration.conftest import Registry, image_table, images, pipeline, run
from tests.integration.test_existing_target import ALLOWED, cluster  # noqa: F401 (a fixture)

pytestmark = pytest.mark.docker


@pytest.fixture(autouse=True)
def _remove_registry_tags(docker: DockerClient, ns: str):
    yield
    # by reference pattern (host/proj-NS/NS/app): only this test's tags
    listed = docker.image.list(filters=[("reference", f"*/*/{ns}/*")])
    tags = [tag for image in listed for tag in image.repo_tags if f"/{ns}/" in tag]
    if tags:
        docker.image.remove(tags, force=True)


def ours(docker: DockerClient, ns: str) -> list[str]:
    """The tags of this test's images on the engine: its names and the registry's tags of them
    (listed by reference pattern: other runs' images come and go meanwhile)."""
    found = []
    for pattern in (f"{ns}/*", f"*/*/{ns}/*"):
        listed = listed_meanwhile(lambda pattern=pattern: docker.image.list(filters=[("reference", pattern)]))
        found += [tag for image in listed for tag in image.repo_tags if f"{ns}/" in tag]
    return found


def cold(docker: DockerClient, ns: str) -> None:
    """The engine of a new CI runner, as far as this test can tell: none of its images (neither
    the names it builds nor the registry's tags of them); shared bases stay."""
    remove_images(docker, ns)
    tags = ours(docker, ns)
    if tags:
        docker.image.remove(tags, force=True)
    assert ours(docker, ns) == []


def stack(repo: Repo, ns: str, busybox_image: str, url: str | None, registry_extra: str = "") -> None:
    """base (not reproducible: a time stamp in a layer), app FROM base, and tool on its own."""
    repo.write("base/Dockerfile", f"FROM {busybox_image}\nRUN date +%s%N > /built-at\n")
    repo.write("app/Dockerfile", f"FROM {ns}/base\nRUN date +%s%N > /early\nCOPY app.txt /app.txt\n")
    repo.write("app/app.txt", "v1\n")
    repo.write("tool/Dockerfile", f"FROM {busybox_image}\nCOPY tool.txt /tool.txt\n")
    repo.write("tool/tool.txt", "tool\n")
    registry = f'[tool.stagegate.registry]\nurl = "{url}"\n{registry_extra}\n' if url else ""
    repo.config(registry + image_table(ns, ("base", "base"), ("app", "app"), ("tool", "tool")))


def statuses(repo: Repo) -> dict[str, str]:
    return {name.split("/", 1)[1]: entry["status"] for name, entry in images(repo).items()}


def output(reporter) -> str:
    return reporter.console.file.getvalue()


def test_a_cold_engine_pulls_what_the_registry_holds_and_builds_only_what_changed(
    repo, docker, busybox_image, reporter, ns, registry: Registry
) -> None:
    url = f"{registry.host}/proj-{ns}"
    stack(repo, ns, busybox_image, url)
    assert pipeline(repo, "--push", docker=docker, reporter=reporter) == 0, repo.error()
    first = images(repo)
    assert set(statuses(repo).values()) == {"built"}

    cold(docker, ns)
    assert pipeline(repo, docker=docker, reporter=reporter) == 0, repo.error()
    assert statuses(repo) == {"base": "pulled", "app": "pulled", "tool": "pulled"}
    again = images(repo)
    for name, entry in again.items():
        # the very images pushed: same tags, same IDs, recorded with where they came from
        assert (entry["ref"], entry["image_id"]) == (first[name]["ref"], first[name]["image_id"])
        assert entry["cache"]["pulled"] is True
        assert entry["cache"]["digest"] == first[name]["registry"]["digest"]
        assert docker.image.inspect(entry["ref"]).id == entry["image_id"]
        assert docker.image.inspect(f"{name}:latest").id == entry["image_id"]
    assert f"↓ {ns}/app: from the registry cache" in output(reporter)
    assert repo.run_record()["stages"]["build"]["outputs"]["registry_cache"]["pulled"] == 3
    # and verify takes them as built here
    assert run(repo, "verify", docker=docker, reporter=reporter) == 0, repo.error()

    # one image's source changed, on another cold engine: exactly that one is built
    cold(docker, ns)
    repo.write("app/app.txt", "v2\n")
    assert pipeline(repo, docker=docker, reporter=reporter) == 0, repo.error()
    assert statuses(repo) == {"base": "pulled", "app": "built", "tool": "pulled"}
    assert images(repo)[f"{ns}/app"]["ref"] != first[f"{ns}/app"]["ref"]
    assert images(repo)[f"{ns}/base"]["ref"] == first[f"{ns}/base"]["ref"]


def test_cache_false_builds_everything_on_a_cold_engine(
    repo, docker, busybox_image, reporter, ns, registry: Registry
) -> None:
    url = f"{registry.host}/proj-{ns}"
    stack(repo, ns, busybox_image, url)
    assert pipeline(repo, "--push", docker=docker, reporter=reporter) == 0, repo.error()
    cold(docker, ns)
    stack(repo, ns, busybox_image, url, "cache = false")
    lookups = len(registry.access_lines())
    assert pipeline(repo, docker=docker, reporter=reporter) == 0, repo.error()
    assert set(statuses(repo).values()) == {"built"}
    assert "registry_cache" not in repo.run_record()["stages"]["build"]["outputs"]
    assert registry.access_lines()[lookups:] == []  # not even asked


def test_a_registry_that_does_not_answer_never_fails_the_build(
    repo, docker, busybox_image, reporter, ns
) -> None:
    stack(repo, ns, busybox_image, "127.0.0.1:1/nobody")  # nothing listens on port 1
    assert pipeline(repo, docker=docker, reporter=reporter) == 0, repo.error()
    assert set(statuses(repo).values()) == {"built"}
    failed = repo.run_record()["stages"]["build"]["outputs"]["registry_cache"]["lookup_failed"]
    assert set(failed) == {f"{ns}/base", f"{ns}/app", f"{ns}/tool"}
    assert "connection refused" in failed[f"{ns}/app"]


def test_on_the_existing_target_a_cached_image_is_recorded_by_digest_and_not_pulled(
    repo,
    docker,
    busybox_image,
    reporter,
    ns,
    registry: Registry,
    cluster,  # noqa: F811
) -> None:
    url = f"{registry.host}/proj-{ns}"
    stack(repo, ns, busybox_image, url)
    assert pipeline(repo, "--push", docker=docker, reporter=reporter) == 0, repo.error()
    pushed = {name: entry["registry"] for name, entry in images(repo).items()}
    cold(docker, ns)
    repo.write(
        "pyproject.toml",
        repo.root.joinpath("pyproject.toml").read_text()
        + f'[tool.stagegate.existing]\ncontexts = ["{ALLOWED}"]\n',
    )
    cluster.scenario(registries=[registry.host])
    argv = ("--target", "existing", "--context", ALLOWED)
    assert pipeline(repo, *argv, docker=docker, reporter=reporter) == 0, repo.error()
    assert statuses(repo) == {"base": "in the registry", "app": "in the registry", "tool": "in the registry"}
    for name, entry in images(repo).items():
        assert entry["registry"]["pinned"] == pushed[name]["pinned"]
        assert entry["cache"]["pulled"] is False
    # nothing pulled: not one of the test's images is on the engine
    assert ours(docker, ns) == []
    push = repo.run_record()["stages"]["build"]["outputs"]["push"]
    assert (push["pushed"], push["present"]) == (0, 3)
    # verify and the cluster stage take the digests as they are
    assert run(repo, "verify", *argv, docker=docker, reporter=reporter) == 0, repo.error()
    checks = repo.run_record()["stages"]["verify"]["outputs"]["images"][f"{ns}/app"]["checks"]
    assert checks == ["present", "platform", "current"]
    assert run(repo, "cluster", *argv, docker=docker, reporter=reporter) == 0, repo.error()

    # a changed app on that cold engine: its base is pulled to build on, nothing else
    cold(docker, ns)
    repo.write("app/app.txt", "v2\n")
    assert pipeline(repo, *argv, docker=docker, reporter=reporter) == 0, repo.error()
    assert statuses(repo) == {"base": "in the registry", "app": "built", "tool": "in the registry"}
    assert images(repo)[f"{ns}/app"]["registry"]["action"] == "pushed"
    assert not [tag for tag in ours(docker, ns) if "/tool:" in tag]


def _git(*argv: str, cwd: Path) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *argv],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def test_two_clones_in_different_folders_give_the_same_tags(
    repo, docker, busybox_image, reporter, ns, tmp_path: Path
) -> None:
    stack(repo, ns, busybox_image, None)
    _git("init", "-q", cwd=repo.root)
    _git("add", "-A", cwd=repo.root)
    _git("commit", "-q", "-m", "fixture", cwd=repo.root)
    built = []
    for where in ("one/checkout", "somewhere/else/entirely"):
        cold(docker, ns)  # another machine: its base is built again, with another image ID
        clone = tmp_path / where
        clone.parent.mkdir(parents=True)
        _git("clone", "-q", str(repo.root), str(clone), cwd=tmp_path)
        assert pipeline(Repo(clone), docker=docker, reporter=reporter) == 0, Repo(clone).error()
        assert set(statuses(Repo(clone)).values()) == {"built"}
        built.append(images(Repo(clone)))
    first, second = built
    assert {n: e["ref"] for n, e in first.items()} == {n: e["ref"] for n, e in second.items()}
    assert first[f"{ns}/base"]["image_id"] != second[f"{ns}/base"]["image_id"]  # not reproducible
    shutil.rmtree(tmp_path / "one")


def test_a_base_rebuilt_from_the_same_inputs_leaves_its_dependents_tag_alone(
    repo, docker, busybox_image, reporter, ns
) -> None:
    stack(repo, ns, busybox_image, None)
    # no_cache: the engine's layer cache would give the same image ID again (no_cache is not an input)
    config = repo.root / "pyproject.toml"
    config.write_text(config.read_text().replace('context = "base"\n', 'context = "base"\nno_cache = true\n'))
    assert pipeline(repo, docker=docker, reporter=reporter) == 0, repo.error()
    first = images(repo)
    base = first[f"{ns}/base"]
    docker.image.remove([base["ref"], f"{ns}/base:latest"], force=True)
    assert pipeline(repo, docker=docker, reporter=reporter) == 0, repo.error()
    assert statuses(repo) == {"base": "built", "app": "up to date", "tool": "up to date"}
    again = images(repo)
    assert again[f"{ns}/base"]["image_id"] != base["image_id"]
    assert again[f"{ns}/base"]["ref"] == base["ref"]
    assert again[f"{ns}/app"]["ref"] == first[f"{ns}/app"]["ref"]


def _layers(docker: DockerClient, ref: str) -> list[str]:
    return list(docker.image.inspect(ref).root_fs.layers)


def test_a_build_takes_layers_from_the_registrys_previous_image(
    repo, docker, busybox_image, reporter, ns, registry: Registry
) -> None:
    url = f"{registry.host}/proj-{ns}"
    stack(repo, ns, busybox_image, url)
    assert pipeline(repo, "--push", docker=docker, reporter=reporter) == 0, repo.error()
    before = _layers(docker, images(repo)[f"{ns}/app"]["ref"])
    remote_latest = f"{url}/{ns}/app:latest"
    argv = [*map(str, docker.client_config.docker_cmd), "manifest", "inspect", "--insecure", remote_latest]
    assert json.loads(subprocess.run(argv, check=True, capture_output=True, text=True).stdout)

    cold(docker, ns)
    repo.write("app/app.txt", "v2\n")
    assert pipeline(repo, docker=docker, reporter=reporter) == 0, repo.error()
    assert statuses(repo)["app"] == "built"
    after = _layers(docker, images(repo)[f"{ns}/app"]["ref"])
    # the `RUN date` layer came from the previous image; only the COPY of the changed file is new
    assert after[:-1] == before[:-1]
    assert after[-1] != before[-1]


def test_a_missing_layer_cache_image_never_fails_the_build(
    repo, docker, busybox_image, reporter, ns, registry: Registry
) -> None:
    url = f"{registry.host}/proj-{ns}"
    stack(repo, ns, busybox_image, url)  # an empty registry: no latest of any image
    assert pipeline(repo, docker=docker, reporter=reporter) == 0, repo.error()
    assert set(statuses(repo).values()) == {"built"}
    first = _layers(docker, images(repo)[f"{ns}/app"]["ref"])
    # and without a cache image the `RUN date` layer is made anew (what the test above tells apart)
    cold(docker, ns)
    assert pipeline(repo, docker=docker, reporter=reporter) == 0, repo.error()
    assert _layers(docker, images(repo)[f"{ns}/app"]["ref"])[-2] != first[-2]
