"""Which manifests a run reads, through the real pipeline: the profile named like the target
applies at preflight, run.json records it, a later stage keeps it; and a manifest in a
sub-folder of a plain-YAML dir is a warning naming it."""

from __future__ import annotations

import pytest
import yaml

from tests.integration.test_verify_stage import DEPLOYMENT, run, stack, verify

pytestmark = pytest.mark.docker

PROFILES = """
[tool.stagegate.profiles.docker.deploy]
manifests = "k8s-docker"
[tool.stagegate.profiles.ci.deploy]
timeout = 60
"""


def profiled_stack(repo, ns, busybox_image) -> None:
    """The base manifests name an image nobody builds; the docker profile's are right."""
    stack(repo, ns, busybox_image, image=f"{ns}/not-built")
    repo.write("k8s-docker/app.yaml", DEPLOYMENT.format(image=f"{ns}/app", policy="IfNotPresent"))
    repo.write("pyproject.toml", repo.root.joinpath("pyproject.toml").read_text() + PROFILES)


def test_the_profile_named_like_the_target_applies_and_a_later_stage_keeps_it(
    repo, docker, busybox_image, reporter, ns
) -> None:
    profiled_stack(repo, ns, busybox_image)
    assert verify(repo, docker, reporter, "--target", "docker") == 0, repo.error()
    record = repo.run_record()
    assert record["profile"] == {"name": "docker", "reason": "the target is docker", "target": "docker"}
    assert "profile docker (the target is docker)" in reporter.console.file.getvalue()
    rendered = repo.root / record["stages"]["verify"]["outputs"]["manifests"]["rendered"]
    pod = next(yaml.safe_load_all(rendered.read_text()))["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"].startswith(f"{ns}/app:sg-")  # k8s-docker, not k8s

    # verify again on its own: the run's profile, whatever the target option says now
    assert run(repo, "verify", "--target", "kind", docker=docker, reporter=reporter) == 0, repo.error()
    # and another profile is refused, not silently mixed into this run
    assert run(repo, "verify", "--profile", "ci", docker=docker, reporter=reporter) == 1
    error = repo.error()
    assert (error["code"], error["subject"]["key"]) == ("CONFIG_INVALID", "--profile")
    assert "started with profile 'docker'" in error["message"]


def test_no_profile_applies_on_a_target_without_one(repo, docker, busybox_image, reporter, ns) -> None:
    profiled_stack(repo, ns, busybox_image)
    assert run(repo, "preflight", "--target", "kind", docker=docker, reporter=reporter) == 1
    error = repo.error()
    assert error["code"] == "MANIFEST_IMAGE_UNKNOWN"  # the base manifests: no profile applied
    assert repo.run_record()["profile"]["name"] is None
    assert "no profile (none is named like the target, kind)" in reporter.console.file.getvalue()


def test_an_unknown_profile_is_config_invalid_naming_the_known_ones(
    repo, docker, busybox_image, reporter, ns
) -> None:
    profiled_stack(repo, ns, busybox_image)
    assert run(repo, "preflight", "--profile", "dokcer", docker=docker, reporter=reporter) == 1
    error = repo.error()
    assert (error["code"], error["subject"]["key"]) == ("CONFIG_INVALID", "--profile")
    assert "'docker'" in error["hint"]


def test_a_manifest_in_a_sub_folder_of_a_plain_yaml_dir_is_a_warning_naming_it(
    repo, docker, busybox_image, reporter, ns
) -> None:
    stack(repo, ns, busybox_image)
    repo.write("k8s/jobs/migrate.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: m}\n")
    assert run(repo, "preflight", docker=docker, reporter=reporter) == 0
    shown = reporter.console.file.getvalue()
    assert "! warning: manifests: k8s/jobs/migrate.yaml not read" in shown
    assert 'manifests = "k8s/**/*.yaml"' in shown
    warnings = repo.run_record()["stages"]["preflight"]["outputs"]["warnings"]
    assert any("k8s/jobs/migrate.yaml" in warning for warning in warnings)


def test_a_profiles_node_image_is_the_one_kind_creates_the_cluster_with(
    repo, docker, busybox_image, reporter, ns, fake, cluster_name
) -> None:
    from tests.integration.test_kind_target import chain
    from tests.integration.test_kind_target import stack as kind_stack

    kind_stack(
        repo, ns, busybox_image, cluster=cluster_name, cluster_extra='node_image = "kindest/node:v1.36.1"\n'
    )
    repo.write(
        "pyproject.toml",
        repo.root.joinpath("pyproject.toml").read_text()
        + '[tool.stagegate.profiles.k8s-1-35.cluster]\nnode_image = "kindest/node:v1.35.5"\n',
    )
    assert chain(repo, docker, reporter, "cluster", argv=("--profile", "k8s-1-35")) == 0, repo.error()
    assert repo.run_record()["profile"]["name"] == "k8s-1-35"
    created = next(repo.artifacts.joinpath("logs").rglob("create.log")).read_text()
    assert "Ensuring node image (kindest/node:v1.35.5)" in created  # the fake kind echoes --image
    assert "v1.36.1" not in created  # not the base table's
