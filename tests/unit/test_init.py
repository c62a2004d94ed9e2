"""`stagegate init`: each discovery rule both ways, and what it writes (and never overwrites)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from stagegate.config import load_config
from stagegate.errors import StagegateError
from stagegate.init import NOXFILE_LINES, Action, describe, discover, init_repository


def write(root: Path, files: dict[str, str]) -> Path:
    for relpath, text in files.items():
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


FILE_ACTIONS = ("created", "appended", "unchanged", "to add by hand")


def written(actions: list[Action]) -> list[Action]:
    """The actions on files, without the findings (what init read) printed before them."""
    return [action for action in actions if action.did in FILE_ACTIONS]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "Shop_App"
    path.mkdir()
    return path


# -- images ---------------------------------------------------------------------------------


def test_an_image_per_dockerfile_named_after_its_folder_with_its_folder_as_context(root: Path) -> None:
    write(
        root, {"api/Dockerfile": "FROM x\nCOPY src/ /app/\n", "api/src/app.py": "", "Dockerfile": "FROM x\n"}
    )
    images = {i.name: (i.context, i.dockerfile) for i in discover(root).images}
    assert images == {"shop-app": (".", None), "api": ("api", None)}


def test_folders_of_the_same_name_are_told_apart_by_their_path(root: Path) -> None:
    write(root, {"a/svc/Dockerfile": "FROM x\n", "b/svc/Dockerfile": "FROM x\n", "c/Dockerfile": "FROM x\n"})
    assert [i.name for i in discover(root).images] == ["c", "a/svc", "b/svc"]


def test_hidden_folders_and_node_modules_are_not_searched(root: Path) -> None:
    write(root, {".devcontainer/Dockerfile": "FROM x\n", "node_modules/x/Dockerfile": "FROM x\n"})
    assert discover(root).images == ()


def test_a_copy_of_a_path_at_the_root_makes_the_root_the_context(root: Path) -> None:
    write(
        root,
        {
            "services/api/Dockerfile": "FROM x AS build\nCOPY services/api/ /app/\nFROM build\nCOPY --from=build /app /app\n",
            "services/api/run.sh": "",
        },
    )
    (image,) = discover(root).images
    assert (image.context, image.dockerfile, image.why_root) == (
        ".",
        "services/api/Dockerfile",
        "services/api/",
    )


def test_copies_inside_the_folder_or_from_a_stage_keep_the_folder_as_context(root: Path) -> None:
    write(
        root,
        {
            "api/Dockerfile": (
                'FROM x AS build\nCOPY ["run.sh", "/app/"]\nCOPY --chown=1:1 *.txt /t/\n'
                "FROM x\nCOPY --from=build /shared /shared\nADD https://example.com/f /f\n"
            ),
            "api/run.sh": "",
            "api/a.txt": "",
            "shared/x": "",  # also at the root, but the COPY names a stage
        },
    )
    (image,) = discover(root).images
    assert (image.context, image.dockerfile) == ("api", None)


def test_the_nearest_folder_above_holding_every_copied_path_is_the_context(root: Path) -> None:
    # this repository's example: example/api/Dockerfile copies api/api, which is in example/
    write(
        root, {"example/api/Dockerfile": "FROM x\nCOPY api/api /app/api\n", "example/api/api/__init__.py": ""}
    )
    (image,) = discover(root).images
    assert (image.name, image.context, image.dockerfile) == ("api", "example", "example/api/Dockerfile")


def test_a_dockerfile_whose_copies_are_nowhere_keeps_its_folder(root: Path) -> None:
    write(root, {"api/Dockerfile": "FROM x\nCOPY missing.txt /x\n"})
    assert discover(root).images[0].context == "api"


def test_a_copy_leaving_the_folder_with_dotdot_makes_the_root_the_context(root: Path) -> None:
    write(root, {"api/Dockerfile": "FROM x\nCOPY ../lib /lib\n", "lib/x": ""})
    assert discover(root).images[0].context == "."


# -- manifests ------------------------------------------------------------------------------

DEPLOYMENT = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\n"


def test_a_kustomize_dir_is_preferred_to_plain_yaml(root: Path) -> None:
    write(
        root,
        {
            "manifests/a.yaml": DEPLOYMENT + "---\n" + DEPLOYMENT,
            "deploy/k8s/kustomization.yaml": "resources: [a.yaml]\n",
            "deploy/k8s/a.yaml": DEPLOYMENT,
        },
    )
    assert discover(root).manifests == ("deploy/k8s",)


def test_a_folder_of_yaml_with_kubernetes_kinds_is_found_and_other_yaml_is_not(root: Path) -> None:
    write(
        root,
        {
            "config/settings.yaml": "debug: true\nkind: of-a-setting\n",  # no apiVersion
            "charts/t/broken.yaml": "{{ .Values }}: [\n",
            "deploy/app.yml": DEPLOYMENT,
        },
    )
    assert discover(root).manifests == ("deploy",)


def test_no_manifests_when_no_yaml_holds_kubernetes_objects(root: Path) -> None:
    write(root, {"config/settings.yaml": "debug: true\n"})
    assert discover(root).manifests == ()


# -- e2e ------------------------------------------------------------------------------------


def test_an_e2e_folder_of_pytest_files_becomes_the_e2e_command(root: Path) -> None:
    write(root, {"tests/unit/test_a.py": "", "tests/e2e/test_api.py": ""})
    assert discover(root).e2e == ("pytest", "tests/e2e", "-q", "-p", "no:cacheprovider")


def test_no_e2e_command_without_pytest_files_in_an_e2e_folder(root: Path) -> None:
    write(root, {"tests/unit/test_a.py": "", "e2e/helpers.py": "", "e2e/README.md": ""})
    assert discover(root).e2e is None


# -- what it writes -------------------------------------------------------------------------


def shop(root: Path) -> Path:
    return write(
        root,
        {
            "api/Dockerfile": "FROM x\nCOPY . /app\n",
            "worker/Dockerfile": "FROM x\nCOPY worker/ /app/\n",
            "k8s/app.yaml": DEPLOYMENT,
            "e2e/test_app.py": "",
        },
    )


def test_a_missing_pyproject_is_created_with_a_config_that_loads(root: Path) -> None:
    actions = written(init_repository(shop(root)))
    assert [(a.path, a.did) for a in actions] == [
        ("pyproject.toml", "created"),
        ("noxfile.py", "created"),
        (".dockerignore", "created"),
    ]
    config = load_config(root, env={})
    assert [(i.name, i.context.name) for i in config.images.values()] == [
        ("api", "api"),
        ("worker", root.name),
    ]
    assert config.deploy.manifests == ((root / "k8s").resolve(),)
    assert tuple(config.e2e.command[:2]) == ("pytest", "e2e")
    assert (root / "noxfile.py").read_text() == NOXFILE_LINES


def test_an_existing_pyproject_keeps_its_bytes_and_gets_the_table_appended(root: Path) -> None:
    mine = '[project]\nname = "shop"   # ours\n\n[tool.ruff]\nline-length = 99'  # no final newline
    write(shop(root), {"pyproject.toml": mine})
    (first, *_) = written(init_repository(root))
    text = (root / "pyproject.toml").read_text()
    assert first.did == "appended" and text.startswith(mine + "\n")
    document = tomllib.loads(text)
    assert document["project"] == {"name": "shop"} and document["tool"]["ruff"] == {"line-length": 99}
    assert [i["name"] for i in document["tool"]["stagegate"]["images"]] == ["api", "worker"]


@pytest.mark.parametrize(
    "mine",
    ["tool = { ruff = { line-length = 99 } }\n", "[project\nname = 1\n"],
    ids=["inline tool table", "not TOML"],
)
def test_a_pyproject_that_cannot_take_the_table_is_refused_and_nothing_is_written(
    root: Path, mine: str
) -> None:
    write(shop(root), {"pyproject.toml": mine})
    with pytest.raises(StagegateError) as refused:
        init_repository(root)
    assert refused.value.code == "CONFIG_INVALID" and "nothing was written" in refused.value.hint
    assert (root / "pyproject.toml").read_text() == mine
    assert not (root / "noxfile.py").exists() and not (root / ".dockerignore").exists()


def test_no_dockerfile_is_refused_and_nothing_is_written(root: Path) -> None:
    write(root, {"k8s/app.yaml": DEPLOYMENT})
    with pytest.raises(StagegateError, match="found no Dockerfile"):
        init_repository(root)
    assert sorted(p.name for p in root.iterdir()) == ["k8s"]


def test_an_existing_noxfile_is_left_alone_and_the_lines_to_add_are_shown(root: Path) -> None:
    write(shop(root), {"noxfile.py": "import nox\n"})
    noxfile = next(a for a in init_repository(root) if a.path == "noxfile.py")
    assert noxfile.did == "to add by hand" and NOXFILE_LINES in noxfile.detail
    assert (root / "noxfile.py").read_text() == "import nox\n"


def test_a_root_dockerignore_gets_the_missing_lines_appended(root: Path) -> None:
    write(shop(root), {".dockerignore": "# ours\n/.nox\n.git"})
    dockerignore = next(a for a in init_repository(root) if a.path == ".dockerignore")
    assert dockerignore.did == "appended"
    text = (root / ".dockerignore").read_text()
    assert text.startswith("# ours\n/.nox\n.git\n") and text.count(".nox") == 1 and ".stagegate/" in text


def test_no_dockerignore_when_no_context_is_the_root(root: Path) -> None:
    write(root, {"api/Dockerfile": "FROM x\nCOPY . /app\n"})
    assert [a.path for a in written(init_repository(root))] == ["pyproject.toml", "noxfile.py"]
    assert not (root / ".dockerignore").exists()


def test_a_second_run_changes_nothing_and_says_already_configured(root: Path) -> None:
    init_repository(shop(root))
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    lines = describe(init_repository(root))
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
    assert lines[0] == "pyproject.toml: unchanged — already configured: [tool.stagegate] is in pyproject.toml"
    assert lines[-1] == "stagegate is already configured here: nothing written"


def test_a_first_run_does_not_say_already_configured(root: Path) -> None:
    assert "already configured" not in " ".join(describe(init_repository(shop(root))))


def test_python_m_stagegate_init_runs_in_the_current_directory_and_refuses_other_words(root: Path) -> None:
    shop(root)
    env = {"PYTHONPATH": str(Path(sys.modules["stagegate"].__file__).parent.parent), "PATH": "/usr/bin:/bin"}
    usage = subprocess.run(
        [sys.executable, "-m", "stagegate", "setup"], cwd=root, env=env, capture_output=True, text=True
    )
    assert usage.returncode == 2 and "usage: python -m stagegate init" in usage.stderr
    refused = subprocess.run(
        [sys.executable, "-m", "stagegate", "init"], cwd=root / "e2e", env=env, capture_output=True, text=True
    )
    assert refused.returncode == 1 and "Traceback" not in refused.stdout + refused.stderr
    assert "CONFIG_INVALID: stagegate init found no Dockerfile in e2e/" in refused.stderr
    done = subprocess.run(
        [sys.executable, "-m", "stagegate", "init"], cwd=root, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "pyproject.toml: created" in done.stdout + done.stderr and (root / "pyproject.toml").is_file()
