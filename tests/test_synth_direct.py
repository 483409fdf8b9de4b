"""`make synth` runs app.py directly: the same cloud assembly as `cdk synth`, the CLI's context, its errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aws_cdk import Annotations, App, Stack
from aws_cdk import aws_cloudformation as cfn

from eks_llm_stack import synth
from eks_llm_stack.synth import CLI_CONTEXT, cli_context, synthesis_messages

ROOT = Path(__file__).resolve().parents[1]
CDK = ROOT / "node_modules" / ".bin" / "cdk"


def _env() -> dict[str, str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "CI": "true"}
    env.pop("AWS_PROFILE", None)
    env.pop("CDK_OUTDIR", None)
    return env


def test_cli_context_is_cdk_json_then_the_cli_defaults_then_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "cdk.json").write_text(json.dumps({"app": "x", "context": {"profile": "default", "@flag": True}}))
    (tmp_path / "cdk.context.json").write_text(json.dumps({"@flag": False, "lookup": "cached"}))
    ctx = cli_context(tmp_path, {"profile": "production.example"})
    assert ctx["profile"] == "production.example"
    # cdk.json's context wins over cdk.context.json, which still contributes its own keys.
    assert ctx["@flag"] is True and ctx["lookup"] == "cached"
    for key, value in CLI_CONTEXT.items():
        assert ctx[key] == value


def test_cli_context_honours_the_cdk_json_metadata_settings(tmp_path: Path) -> None:
    (tmp_path / "cdk.json").write_text(json.dumps({"app": "x", "versionReporting": False, "pathMetadata": False}))
    ctx = cli_context(tmp_path)
    assert ctx["aws:cdk:version-reporting"] is False
    assert ctx["aws:cdk:enable-path-metadata"] is False
    assert ctx["aws:cdk:enable-asset-metadata"] is True


def test_the_repository_cdk_json_turns_the_notices_probe_off() -> None:
    assert json.loads((ROOT / "cdk.json").read_text())["notices"] is False


def test_synthesis_messages_reads_warnings_and_errors_from_the_assembly(tmp_path: Path) -> None:
    app = App(outdir=str(tmp_path))
    stack = Stack(app, "S")
    cfn.CfnWaitConditionHandle(stack, "H")
    Annotations.of(stack).add_warning_v2("demo:warn", "a warning")
    Annotations.of(stack).add_error("an error")
    app.synth()
    messages = synthesis_messages(tmp_path)
    assert ("warning", "/S", "a warning [ack: demo:warn]") in messages
    assert ("error", "/S", "an error") in messages


def test_a_synthesis_error_fails_the_direct_run_like_cdk_synth(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fake_synthesize_app(*, app: App) -> object:
        stack = Stack(app, "S")
        cfn.CfnWaitConditionHandle(stack, "H")
        Annotations.of(stack).add_error("the pool fits no model")
        app.synth()
        return object()

    monkeypatch.setattr(synth, "synthesize_app", fake_synthesize_app)
    code = synth.synthesize_direct({}, outdir=tmp_path / "out", root=tmp_path)
    err = capsys.readouterr().err
    assert code == 1
    assert "ERROR the pool fits no model" in err and "Found errors" in err


def test_a_nag_finding_fails_the_direct_run_with_the_report_and_no_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from aws_cdk import aws_sns as sns

    from eks_llm_stack.gates.nag import add_nag_checks

    def fake_synthesize_app(*, app: App) -> object:
        sns.Topic(Stack(app, "S"), "T")  # no SSL-only policy: AwsSolutions-SNS3
        add_nag_checks(app)
        app.synth()
        return object()

    monkeypatch.setattr(synth, "synthesize_app", fake_synthesize_app)
    code = synth.synthesize_direct({}, outdir=tmp_path / "out", root=tmp_path)
    err = capsys.readouterr().err
    assert code == 1
    assert "SNS Topic does not require publishers to use SSL" in err and "AwsSolutions-SNS3" in err
    assert "Traceback" not in err


def test_a_bad_profile_fails_the_direct_run_with_the_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("prefix: llm\nnetwrk: {}\n")
    code = synth.synthesize_direct({"profile": str(bad)}, outdir=tmp_path / "out", root=ROOT)
    err = capsys.readouterr().err
    assert code == 1
    assert "netwrk: unknown key" in err and "did you mean 'network'?" in err


def test_app_py_refuses_a_context_option_without_a_value(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "app.py"), "-c", "profile", "-o", str(tmp_path / "out")],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "-c profile: expected KEY=VALUE" in result.stderr


def test_app_py_exits_with_the_error_code_and_leaves_nothing_behind(tmp_path: Path) -> None:
    """app.py exits without finalizing the interpreter, after the exit handlers: the jsii runtime's
    files are gone and the exit code is the run's."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("prefix: llm\nnetwrk: {}\n")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    result = subprocess.run(
        [sys.executable, str(ROOT / "app.py"), "-c", f"profile={bad}", "-o", str(tmp_path / "out")],
        cwd=ROOT,
        env={**_env(), "TMPDIR": str(scratch)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "did you mean 'network'?" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(scratch.iterdir()) == []


def _files(d: Path, pattern: str) -> dict[str, str]:
    return {p.relative_to(d).as_posix(): p.read_text() for p in sorted(d.glob(pattern))}


def _context(tmp_path: Path, name: str) -> list[str]:
    return ["-c", "profile=production.example", "-c", f"manifests_dir={tmp_path / f'{name}-manifests'}"]


@pytest.mark.slow
def test_direct_app_writes_what_cdk_synth_writes_and_the_cli_probes_no_notices(tmp_path: Path) -> None:
    """`make synth` (app.py -c ...) and `cdk synth -c ...` give the same templates, assembly and manifests."""
    cli = subprocess.run(
        [str(CDK), "synth", "--quiet", "--ci", "--debug", "-o", str(tmp_path / "cli"), *_context(tmp_path, "cli")],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert cli.returncode == 0, cli.stderr[-3000:]
    # cdk.json's "notices": false: the CLI never tries to fetch notices (a network probe per command).
    assert "refresh notices" not in cli.stdout + cli.stderr
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    direct = subprocess.run(
        [
            sys.executable,
            str(ROOT / "app.py"),
            "-o",
            str(tmp_path / "direct"),
            *_context(tmp_path, "direct"),
            "--summary",
        ],
        cwd=ROOT,
        env={**_env(), "TMPDIR": str(scratch)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert direct.returncode == 0, direct.stderr[-3000:]
    assert list(scratch.iterdir()) == []  # the jsii runtime's files, removed at exit
    templates = _files(tmp_path / "cli", "*.template.json")
    assert len(templates) == 4
    assert _files(tmp_path / "direct", "*.template.json") == templates
    for name in ("manifest.json", "tree.json"):
        assert (tmp_path / "direct" / name).read_text() == (tmp_path / "cli" / name).read_text(), name
    assert _files(tmp_path / "direct", "*.assets.json") == _files(tmp_path / "cli", "*.assets.json")
    manifests = _files(tmp_path / "cli-manifests", "*/*.yaml")  # one directory per apply step
    assert manifests and _files(tmp_path / "direct-manifests", "*/*.yaml") == manifests
    # The summary of the same process, as `eks-llm-stack summary` prints it.
    assert "4 stacks" in direct.stdout and "Deploy: cdk deploy --all" in direct.stdout


def test_assembly_templates_reads_what_the_assembly_holds(default_synth) -> None:
    from eks_llm_stack.synth import assembly_templates

    expected = {s.stack_name: s.template for s in default_synth.assembly.stacks}
    assert assembly_templates(Path(default_synth.assembly.directory)) == expected
    assert len(expected) == 4
