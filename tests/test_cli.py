"""The `eks-llm-stack` command: help, profile tools, synth summary, and the generated profile reference."""

from __future__ import annotations

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
