"""The build stage's pure parts: what an image's inputs are (a dependency pinned to this run's
exact tag, ``depends_on`` in the hash), how a failed build becomes its error, and the log
excerpt. Written against the mutation trial of issue #15: each test names the bug it catches.

The fixtures tell right from wrong: the dependency's ref is its run-unique ``sg-`` tag (never
``:latest``, which an unpinned ``FROM`` would also resolve to), two dependencies differ only by
image ID, and the output is 27 lines (not a multiple of the 20 kept).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from stagegate import hashing
from stagegate.builder import BuildFailure
from stagegate.config import Config, ImageSpec, load_config
from stagegate.errors import Code
from stagegate.imageinputs import BuiltImage, image_inputs, onbuild_triggers
from stagegate.runner import log_excerpt
from stagegate.stages.build_image import build_error

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "build-output"
BASE_REF = "t/base:sg-3f9a1c0d7e2b4a65"  # this run's exact tag of t/base
BASE_ID = "sha256:" + "a1" * 32
OTHER_ID = "sha256:" + "b2" * 32
BASE_HASH = "c3" * 32  # t/base's input hash (BASE_REF's tag is not derived from it: told apart)
OTHER_HASH = "d4" * 32


def app_spec(tmp_path: Path, dockerfile: str, extra: str = "") -> ImageSpec:
    root = tmp_path / "repo"
    for relpath, text in {
        "pyproject.toml": textwrap.dedent(
            f"""\
            [tool.stagegate]
            [[tool.stagegate.images]]
            name = "t/base"
            context = "base"
            [[tool.stagegate.images]]
            name = "t/app"
            context = "app"
            {extra}
            """
        ),
        "base/Dockerfile": "FROM scratch\n",
        "app/Dockerfile": dockerfile,
    }.items():
        (root / relpath).parent.mkdir(parents=True, exist_ok=True)
        (root / relpath).write_text(text)
    return load_config(root, {}).images["t/app"]


def inputs_of(
    spec: ImageSpec, base_id: str = BASE_ID, base_hash: str = BASE_HASH
) -> tuple[dict[str, str], hashing.Inputs]:
    return image_inputs(
        spec,
        {"t/base": BuiltImage(BASE_REF, base_id, base_hash)},
        lambda ref: "absent",
        hasher=hashing.ContextHasher(None),
    )


def test_a_build_arg_naming_a_dependency_is_pinned_to_this_runs_exact_tag(tmp_path: Path) -> None:
    spec = app_spec(tmp_path, "ARG BASE=t/base\nFROM ${BASE}\n")
    build_args, inputs = inputs_of(spec)
    assert build_args["BASE"] == BASE_REF  # not "t/base", which Docker reads as t/base:latest
    assert inputs.build_args["BASE"] == BASE_REF


def test_a_build_arg_naming_a_dependency_with_a_tag_is_pinned_too(tmp_path: Path) -> None:
    spec = app_spec(tmp_path, "ARG BASE=t/base:1.0\nFROM ${BASE}\n")
    assert inputs_of(spec)[0]["BASE"] == BASE_REF


def test_depends_on_without_a_from_line_is_in_the_input_hash(tmp_path: Path) -> None:
    spec = app_spec(tmp_path, "FROM scratch\n", 'depends_on = ["t/base"]')
    first, changed_base = inputs_of(spec)[1], inputs_of(spec, base_hash=OTHER_HASH)[1]
    assert first.digest() != changed_base.digest()
    assert first.bases == {"depends_on:t/base": f"inputs:{BASE_HASH}"}


def test_a_dependency_rebuilt_from_the_same_inputs_leaves_its_dependents_tag_alone(tmp_path: Path) -> None:
    # another machine (or --no-cache) builds t/base again: a new image ID, the same input hash
    spec = app_spec(tmp_path, "FROM t/base\n")
    here, elsewhere = inputs_of(spec)[1], inputs_of(spec, base_id=OTHER_ID)[1]
    assert here.digest() == elsewhere.digest()
    assert BASE_ID not in here.bases.values()


def test_a_dependency_recorded_without_an_input_hash_is_an_input_by_its_image_id(tmp_path: Path) -> None:
    spec = app_spec(tmp_path, "FROM t/base\n")  # a ledger written before input hashes were kept
    assert inputs_of(spec, base_hash="")[1].bases == {"t/base": BASE_ID, "depends_on:t/base": BASE_ID}
    assert inputs_of(spec, base_hash="")[1].digest() != inputs_of(spec, OTHER_ID, "")[1].digest()


def test_the_daemon_lost_mid_build_is_docker_unavailable_not_build_failed(tmp_path: Path) -> None:
    spec = app_spec(tmp_path, "FROM scratch\n")
    output = (FIXTURES / "legacy-connection-dropped.txt").read_text()
    failure = BuildFailure(["docker", "build", "app"], 1, output)
    error = build_error(spec, failure, lambda p: Path(p).name, tmp_path / "t-app.log")
    assert error.code == Code.DOCKER_UNAVAILABLE
    assert error.subject == {"image": "t/app"}
    assert "went away during the build" in error.message


def test_a_failed_run_step_is_build_failed(tmp_path: Path) -> None:
    spec = app_spec(tmp_path, "FROM scratch\n")
    failure = BuildFailure(["docker", "build", "app"], 1, (FIXTURES / "legacy-run.txt").read_text())
    assert (
        build_error(spec, failure, lambda p: Path(p).name, tmp_path / "t-app.log").code == Code.BUILD_FAILED
    )


def test_the_build_excerpt_keeps_the_tail_of_the_output() -> None:
    output = "".join(f"line {n}\n" for n in range(1, 28))  # 27 lines, 20 kept
    kept = log_excerpt(output).splitlines()
    assert kept == [f"line {n}" for n in range(8, 28)]


def test_the_dependency_a_from_line_names_through_a_build_arg_is_an_input_by_its_input_hash(
    tmp_path: Path,
) -> None:
    spec = app_spec(tmp_path, "ARG BASE=t/base\nFROM ${BASE}\n")
    # by this run's ref and input hash, never local_id's "absent" (and once more as a dependency)
    by_hash = f"inputs:{BASE_HASH}"
    assert inputs_of(spec)[1].bases == {BASE_REF: by_hash, "depends_on:t/base": by_hash}


def test_a_from_line_naming_a_dependency_directly_is_an_input_by_its_input_hash(tmp_path: Path) -> None:
    spec = app_spec(tmp_path, "FROM t/base\n")
    by_hash = f"inputs:{BASE_HASH}"
    assert inputs_of(spec)[1].bases == {"t/base": by_hash, "depends_on:t/base": by_hash}
    assert inputs_of(spec)[1].digest() != inputs_of(spec, base_hash=OTHER_HASH)[1].digest()


def test_an_external_base_and_an_external_build_arg_are_looked_up_and_kept(tmp_path: Path) -> None:
    spec = app_spec(tmp_path, "ARG TOOL=busybox:1.36\nFROM ${TOOL}\n")
    build_args, inputs = image_inputs(
        spec,
        {},
        lambda ref: f"sha256:id-of-{ref}",
        hasher=hashing.ContextHasher(None),
    )
    assert build_args == {}  # the default stays the Dockerfile's: nothing passed
    assert inputs.bases == {"busybox:1.36": "sha256:id-of-busybox:1.36"}


def test_the_build_excerpt_drops_blank_lines_the_deprecation_banner_and_trailing_space_only() -> None:
    output = (FIXTURES / "legacy-run.txt").read_text().split("\n", 1)[1]  # without the provenance line
    output += "\n   \n    indented step output   \n"
    kept = log_excerpt(output).splitlines()
    assert not any("deprecated" in ln or "buildx" in ln for ln in kept)
    assert all(ln.strip() for ln in kept)
    assert kept[-1] == "    indented step output"  # leading space kept, trailing space gone
    assert kept[-2] == "The command '/bin/sh -c echo building &&     exit 3' returned a non-zero code: 3"


def test_the_build_options_of_an_image_are_in_its_input_hash(tmp_path: Path) -> None:
    plain = app_spec(tmp_path / "plain", "FROM scratch AS app\n")
    targeted = app_spec(tmp_path / "targeted", "FROM scratch AS app\n", 'target = "app"')
    assert inputs_of(targeted)[1].digest() != inputs_of(plain)[1].digest()


def test_what_never_is_an_input_stays_out_of_the_hash(tmp_path: Path) -> None:
    spec = app_spec(tmp_path, "FROM scratch\nCOPY . /src\n")
    artifacts = spec.context / ".stagegate"
    artifacts.mkdir()

    def digest() -> str:
        return image_inputs(
            spec, {}, lambda ref: "absent", hasher=hashing.ContextHasher(None), never=(artifacts,)
        )[1].digest()

    (artifacts / "run.json").write_text("{}")
    first = digest()
    (artifacts / "run.json").write_text('{"changed": true}')
    assert digest() == first
    (spec.context / "app.py").write_text("print(1)\n")
    assert digest() != first  # the hash does see the context


MULTI_STAGE = """\
FROM scratch AS api
COPY api/ /app/
FROM scratch AS web
COPY web/ /www/
"""


def files_of(spec: ImageSpec) -> set[str]:
    return set(inputs_of(spec)[1].files)


def test_the_context_files_of_an_image_are_those_its_copy_sources_take(tmp_path: Path) -> None:
    spec = app_spec(tmp_path, MULTI_STAGE, 'target = "api"')
    for relpath in ("api/main.sh", "web/index.html", "k8s/deployment.yaml", "README.md"):
        (spec.context / relpath).parent.mkdir(parents=True, exist_ok=True)
        (spec.context / relpath).write_text("v1\n")
    before = inputs_of(spec)[1]
    assert set(before.files) == {"api/main.sh"}  # not the other target's folder, nor the rest

    (spec.context / "k8s" / "deployment.yaml").write_text("v2\n")
    (spec.context / "web" / "index.html").write_text("v2\n")
    assert inputs_of(spec)[1].digest() == before.digest()
    (spec.context / "api" / "main.sh").write_text("v2\n")
    after = inputs_of(spec)[1]
    assert after.digest() != before.digest()
    assert after.changes_since(before) == ["api/main.sh changed"]  # what IMAGE_STALE names


def test_the_whole_context_is_an_input_where_the_dockerfile_copies_all_of_it(tmp_path: Path) -> None:
    whole = app_spec(tmp_path / "whole", "FROM scratch\nCOPY . /app\n")
    from_arg = app_spec(tmp_path / "arg", "FROM scratch\nARG SRC=api\nCOPY ${SRC} /app\n")
    bind = app_spec(
        tmp_path / "bind", "FROM scratch\nCOPY api /app\nRUN --mount=type=bind,target=/src true\n"
    )
    literal = app_spec(tmp_path / "literal", "FROM scratch\nCOPY api /app\n")
    for spec in (whole, from_arg, bind, literal):
        (spec.context / "api").mkdir()
        (spec.context / "api" / "main.sh").write_text("v1\n")
        (spec.context / "README.md").write_text("v1\n")
    assert (
        files_of(whole) == files_of(from_arg) == files_of(bind) == {"Dockerfile", "api/main.sh", "README.md"}
    )
    assert files_of(literal) == {"api/main.sh"}


def with_base(tmp_path: Path, base: str, app: str) -> tuple[ImageSpec, Config]:
    spec = app_spec(tmp_path, app)
    root = spec.context.parent
    (root / "base" / "Dockerfile").write_text(base)
    for relpath in ("app/api/main.sh", "app/conf/a.yaml", "app/README.md"):
        (root / relpath).parent.mkdir(parents=True, exist_ok=True)
        (root / relpath).write_text("v1\n")
    config = load_config(root, {})
    return config.images["t/app"], config


@pytest.mark.parametrize(
    ("base", "files"),
    [
        ("FROM scratch\n", {"api/main.sh"}),
        ("FROM scratch\nONBUILD RUN true\n", {"api/main.sh"}),
        ("FROM scratch\nONBUILD COPY conf /etc/conf\n", {"api/main.sh", "conf/a.yaml"}),
        ("FROM scratch\nONBUILD COPY . /src\n", {"Dockerfile", "api/main.sh", "conf/a.yaml", "README.md"}),
    ],
)
def test_what_a_bases_onbuild_triggers_copy_is_an_input_too(
    tmp_path: Path, base: str, files: set[str]
) -> None:
    spec, config = with_base(tmp_path, base, "FROM t/base\nCOPY api /app\n")
    _, inputs = image_inputs(
        spec,
        {"t/base": BuiltImage(BASE_REF, BASE_ID)},
        lambda ref: "absent",
        hasher=hashing.ContextHasher(None),
        onbuild=lambda ref: onbuild_triggers(config, ref, {}),
    )
    assert set(inputs.files) == files


def test_an_external_bases_onbuild_triggers_are_those_docker_inspect_gave(tmp_path: Path) -> None:
    inspected = {"vendor/app:onbuild": ("COPY . /usr/src/app",), "vendor/plain:1": ()}
    _, config = with_base(tmp_path, "FROM scratch\nONBUILD COPY conf /conf\n", "FROM vendor/app:onbuild\n")
    assert onbuild_triggers(config, "t/base:sg-0123", inspected) == ("COPY conf /conf",)  # configured
    assert onbuild_triggers(config, "vendor/app:onbuild", inspected) == ("COPY . /usr/src/app",)
    assert onbuild_triggers(config, "vendor/plain:1", inspected) == ()
