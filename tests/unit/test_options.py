"""stagegate.options: the option set of every pipeline session; every mistake is CONFIG_INVALID."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from stagegate import options as options_module
from stagegate.errors import Code, StagegateError
from stagegate.options import Options, parse_options


def option_error(argv: list[str]) -> StagegateError:
    with pytest.raises(StagegateError) as info:
        parse_options(argv)
    assert info.value.code == Code.CONFIG_INVALID
    assert info.value.subject["key"] == "options"
    return info.value


def test_defaults() -> None:
    options = parse_options([])

    assert (options.keep_going, options.only, options.jobs) == (False, (), 0)


def test_keep_going() -> None:
    assert parse_options(["--keep-going"]).keep_going is True


@pytest.mark.parametrize(
    ("argv", "only"),
    [
        (["--only", "example/app"], ("example/app",)),
        (["--only", "a", "--only", "b"], ("a", "b")),
        (["--only", "a,b", "--only", "c"], ("a", "b", "c")),
        (["--only=a,,b,"], ("a", "b")),
    ],
)
def test_only(argv: list[str], only: tuple[str, ...]) -> None:
    assert parse_options(argv).only == only


@pytest.mark.parametrize(
    ("argv", "jobs"), [(["--jobs", "4"], 4), (["--jobs=2"], 2), (["-j", "3"], 3), (["-j1"], 1)]
)
def test_jobs(argv: list[str], jobs: int) -> None:
    assert parse_options(argv).jobs == jobs


def test_all_options_together() -> None:
    options = parse_options(["--only", "a", "--keep-going", "-j", "2"])

    assert options == Options(keep_going=True, only=("a",), jobs=2)


@pytest.mark.parametrize("value", ["0", "-1", "x", "1.5", ""])
def test_bad_jobs_value(value: str) -> None:
    error = option_error(["--jobs", value])

    assert "--jobs" in error.message
    assert "--jobs N" in error.hint


@pytest.mark.parametrize("argv", [["--only"], ["--jobs"], ["--keep-going", "--only"]])
def test_option_without_its_value_is_config_invalid_not_system_exit(argv: list[str]) -> None:
    error = option_error(argv)

    assert "expected one argument" in error.message


def test_flag_with_a_value() -> None:
    option_error(["--keep-going=yes"])


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["--frobnicate"], "--frobnicate"),
        (["--keep-going", "--dry-run", "--also"], "--dry-run"),
        (["--force=1"], "--force=1"),
        (["example/app"], "example/app"),
        (["-x"], "-x"),
    ],
)
def test_unknown_option(argv: list[str], option: str) -> None:
    error = option_error(argv)

    assert error.subject["option"] == option
    assert repr(option) in error.message
    assert "--keep-going" in error.hint


@pytest.mark.parametrize(
    ("argv", "option"), [(["--keep"], "--keep"), (["--on", "a"], "--on"), (["--job", "2"], "--job")]
)
def test_abbreviations_are_unknown_options(argv: list[str], option: str) -> None:
    assert option_error(argv).subject["option"] == option


def test_to_json() -> None:
    assert parse_options(["--only", "a,b", "-j", "3", "--keep-going"]).to_json() == {
        "keep_going": True,
        "only": ["a", "b"],
        "jobs": 3,
        "target": None,
        "keep_cluster": False,
        "recreate": False,
        "profile": None,
        "push": False,
        "context": None,
        "no_cache": False,
        "bundle_out": None,
        "bundle_in": None,
    }


def test_bundle_options_take_a_directory() -> None:
    options = parse_options(["--bundle-out", "out", "--bundle-in", "in"])
    assert (options.bundle_out, options.bundle_in) == ("out", "in")
    assert (parse_options([]).bundle_out, parse_options([]).bundle_in) == (None, None)
    assert option_error(["--bundle-in"]).code == Code.CONFIG_INVALID  # needs a directory


def test_profile_option() -> None:
    assert parse_options(["--profile", "docker"]).profile == "docker"
    assert parse_options([]).profile is None
    assert option_error(["--profile"]).code == Code.CONFIG_INVALID  # needs a name


def test_existing_target_options() -> None:
    parsed = parse_options(["--target", "existing", "--context", "ci-cluster", "--push"])
    assert (parsed.target, parsed.context, parsed.push) == ("existing", "ci-cluster", True)


def test_cluster_options() -> None:
    parsed = parse_options(["--target", "kind", "--keep-cluster", "--recreate"])
    assert (parsed.target, parsed.keep_cluster, parsed.recreate) == ("kind", True, True)
    assert option_error(["--target", "nowhere"]).code == Code.CONFIG_INVALID


def test_no_cache_option() -> None:
    assert parse_options(["--no-cache"]).no_cache is True
    assert parse_options([]).no_cache is False
    assert option_error(["--no-cach"]).code == Code.CONFIG_INVALID  # no abbreviation


def test_max_parallel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(options_module.os, "cpu_count", lambda: 6)
    assert Options(jobs=2).max_parallel == 2
    assert Options().max_parallel == 6

    monkeypatch.setattr(options_module.os, "cpu_count", lambda: None)
    assert Options().max_parallel == 1


def test_help_lists_every_declared_option_with_its_help() -> None:
    text = options_module.options_help()
    declared = options_module.declared(Options)

    assert [f.name for f, _ in declared] == [f.name for f in dataclasses.fields(Options)]  # none left out
    for _, option in declared:
        assert f"  {', '.join(option.forms())}\n      {option.help}\n" in text
    assert "  --jobs N, -j N\n" in text and "  --target auto|kind|docker|existing\n" in text
    prune = options_module.prune_options_help()
    assert "  --keep N\n" in prune and "  --dry-run\n" in prune and "--keep-going" not in prune


@pytest.mark.parametrize(
    ("argv", "wanted"),
    [
        (["--help"], True),
        (["-h"], True),
        (["--target", "docker", "--help"], True),
        ([], False),
        (["--hel"], False),
    ],
)
def test_help_is_asked_by_either_flag_anywhere(argv: list[str], wanted: bool) -> None:
    assert options_module.wants_help(argv) is wanted


def test_an_option_declared_once_is_parsed_listed_in_the_hint_and_recorded() -> None:
    """Every declared option parses, is named in an unknown option's hint, and reaches to_json
    (run.json's record) by its field name; a value given is the value recorded."""
    hint = option_error(["--frobnicate"]).hint
    for f, option in options_module.declared(Options):
        assert option.usage in hint
        if option.metavar is None and option.choices is None:
            argv, expected = [option.flags[0]], True
        elif option.choices:
            argv, expected = [option.flags[0], option.choices[-1]], option.choices[-1]
        elif option.parse is not None:
            argv, expected = [option.flags[0], "2"], 2
        else:
            argv, expected = [option.flags[0], "value"], ["value"] if option.repeat else "value"
        recorded = parse_options(argv).to_json()
        assert recorded[f.name] == expected, f.name
        assert recorded == {**Options().to_json(), f.name: expected}


def _readme_options_table() -> list[str]:
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text.split("\n### Options\n", 1)[1].split("\n#", 1)[0]
    return [
        line.split(" | ")[0].removeprefix("| ") for line in section.splitlines() if line.startswith("| `")
    ]


def test_readmes_options_table_lists_the_declared_options_in_order() -> None:
    expected = [
        ", ".join(f"`{form}`" for form in option.forms()).replace("|", "\\|")
        for _, option in options_module.declared(Options)
    ]
    assert _readme_options_table() == expected


@pytest.mark.parametrize("argv", [["--only", ""], ["--only", ","], ["--only", " , "]])
def test_only_naming_no_image_is_config_invalid(argv: list[str]) -> None:
    with pytest.raises(StagegateError) as caught:
        parse_options(argv)
    assert caught.value.code == Code.CONFIG_INVALID
    assert caught.value.subject["key"] == "--only"


def test_a_number_out_of_range_says_what_is_expected() -> None:
    error = option_error(["--jobs", "0"])
    assert "expected a whole number ≥ 1, got '0'" in error.message
    assert "_positive" not in error.message


def test_prune_options() -> None:
    from stagegate.options import PruneOptions, parse_prune_options

    assert parse_prune_options([]) == PruneOptions(keep=3, dry_run=False)
    assert parse_prune_options(["--keep", "0", "--dry-run"]) == PruneOptions(keep=0, dry_run=True)
    for argv in (["--keep", "-1"], ["--keep-going"], ["--kee", "2"]):
        with pytest.raises(StagegateError) as info:
            parse_prune_options(argv)
        assert info.value.code == Code.CONFIG_INVALID and "--keep N" in info.value.hint
