"""The `eks-llm-stack` command: help, profile tools, synth summary, and the generated profile reference."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from eks_llm_stack.cli import main
from eks_llm_stack.config.reference import render_reference

ROOT = Path(__file__).resolve().parents[1]


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("summary", "profile"):
        assert command in out


def test_profile_validate_passes_shipped_profiles(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "validate"]) == 0
    assert "ok      production.example" in capsys.readouterr().out


def test_profile_validate_reports_a_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("prefix: Nope!\nregion: mars-1\n")
    assert main(["profile", "validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "prefix: 'Nope!' is not a usable prefix" in err
    assert "region: 'mars-1' is not an AWS region name" in err


def test_profile_reference_in_docs_matches_the_models() -> None:
    """docs/profiles.md is generated; regenerate with `eks-llm-stack profile docs > docs/profiles.md`."""
    assert (ROOT / "docs" / "profiles.md").read_text() == render_reference()


def test_summary_of_a_synth(default_synth, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from eks_llm_stack.synth import write_chart_manifests

    manifests = tmp_path / "manifests"
    write_chart_manifests(default_synth.built, manifests)
    assert main(["summary", str(default_synth.outdir / "cdk.out"), str(manifests), "--profile", "default"]) == 0
    out = capsys.readouterr().out
    assert "Llm-Platform" in out and "namespaces.yaml" in out
    assert "4 stacks" in out


def test_summary_without_a_synth_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", str(tmp_path / "nothing")]) == 2
    assert "run `make synth` first" in capsys.readouterr().err


def test_summary_counts_kinds_as_a_yaml_parser_does(any_synth) -> None:
    """The summary reads only the `kind:` lines; a YAML parser judges it on every file a synth writes."""
    import yaml

    from eks_llm_stack.cli.summary import count_kinds

    files = sorted((any_synth.outdir / "manifests").rglob("*.yaml"))
    assert any("10-crds" in str(f) for f in files)  # the multi-megabyte vendored CRDs are among them
    for path in files:
        text = path.read_text()
        docs = [d for d in yaml.load_all(text, Loader=yaml.CSafeLoader) if d]
        assert count_kinds(text) == Counter(d.get("kind", "?") for d in docs), path


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("", {}),
        ("---\n---\n", {}),
        ("# a comment only\n---\n", {}),
        ("apiVersion: v1\nkind: Namespace\n---\nkind: 'Secret'\n", {"Namespace": 1, "Secret": 1}),
        ("apiVersion: v1\nmetadata:\n  kind: nested\n", {"?": 1}),
        ("--- \nkind: ConfigMap # inline comment\n--- # separator comment\nspec: {}\n", {"ConfigMap": 1, "?": 1}),
    ],
)
def test_count_kinds_cases(text: str, kinds: dict[str, int]) -> None:
    import yaml

    from eks_llm_stack.cli.summary import count_kinds

    assert count_kinds(text) == Counter(kinds)
    # The same answer as parsing.
    assert Counter(d.get("kind", "?") for d in yaml.safe_load_all(text) if d) == Counter(kinds)
