"""preflight checks the bootstrap a deploy goes through: toolkit stack, qualifier and boundary (moto)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from eks_llm_stack.cli import main
from eks_llm_stack.ops import preflight
from eks_llm_stack.ops.aws import Aws
from eks_llm_stack.ops.preflight import Bootstrap, Status
from eks_llm_stack.ops.requirements import Requirements

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
EPHCI = Bootstrap(qualifier="ephci", permissions_boundary="eks-llm-stack-ephemeral-boundary")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("EKS_LLM_STACK_BOOTSTRAP_QUALIFIER", raising=False)
    monkeypatch.delenv("EKS_LLM_STACK_PERMISSIONS_BOUNDARY", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", REGION)
    with mock_aws():
        yield Aws.from_env()


def req() -> Requirements:
    return Requirements(account=ACCOUNT, region=REGION, kubernetes_version="1.35")


def toolkit(stack_name: str, *, qualifier: str = "hnb659fds", boundary: str = "", version: str = "29") -> None:
    """A toolkit stack with the parameters of the CDK bootstrap template that preflight reads."""
    template = {
        "Parameters": {
            "Qualifier": {"Type": "String", "Default": "hnb659fds"},
            "InputPermissionsBoundary": {"Type": "String", "Default": ""},
        },
        "Resources": {"Bucket": {"Type": "AWS::S3::Bucket"}},
        "Outputs": {"BootstrapVersion": {"Value": version}},
    }
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(template),
        Parameters=[
            {"ParameterKey": "Qualifier", "ParameterValue": qualifier},
            {"ParameterKey": "InputPermissionsBoundary", "ParameterValue": boundary},
        ],
    )


def test_the_toolkit_stack_of_a_qualifier_is_cdktoolkit_dash_qualifier() -> None:
    assert Bootstrap().toolkit_stack == "CDKToolkit"
    assert Bootstrap(qualifier="ephci").toolkit_stack == "CDKToolkit-ephci"
    assert Bootstrap(qualifier="ephci", stack_name="Boot").toolkit_stack == "Boot"


def test_the_ephemeral_bootstrap_passes(aws: Aws) -> None:
    toolkit("CDKToolkit-ephci", qualifier="ephci", boundary="eks-llm-stack-ephemeral-boundary")
    [result] = preflight.check_bootstrap(aws, req(), EPHCI)
    assert result.status is Status.PASS, result
    assert "CDKToolkit-ephci" in result.detail and "qualifier ephci" in result.detail


def test_only_the_default_bootstrap_fails_the_ephemeral_one(aws: Aws) -> None:
    """The account has CDKToolkit only: the ephci deploy would fail, so preflight does."""
    toolkit("CDKToolkit")
    [result] = preflight.check_bootstrap(aws, req(), EPHCI)
    assert result.status is Status.FAIL
    assert result.detail == f"stack CDKToolkit-ephci not found in {REGION}"
    assert result.fix == (
        f"run 'cdk bootstrap aws://{ACCOUNT}/{REGION} --qualifier ephci --toolkit-stack-name CDKToolkit-ephci "
        "--custom-permissions-boundary eks-llm-stack-ephemeral-boundary'"
    )


def test_a_toolkit_stack_of_another_qualifier_fails(aws: Aws) -> None:
    toolkit("CDKToolkit-ephci", qualifier="hnb659fds", boundary="eks-llm-stack-ephemeral-boundary")
    [result] = preflight.check_bootstrap(aws, req(), EPHCI)
    assert result.status is Status.FAIL
    assert "bootstrapped with qualifier hnb659fds, not ephci" in result.detail
    assert "--qualifier ephci" in result.fix


def test_a_bootstrap_without_the_boundary_fails(aws: Aws) -> None:
    toolkit("CDKToolkit-ephci", qualifier="ephci")
    [result] = preflight.check_bootstrap(aws, req(), EPHCI)
    assert result.status is Status.FAIL
    assert "permissions boundary (none), not eks-llm-stack-ephemeral-boundary" in result.detail
    assert "--custom-permissions-boundary eks-llm-stack-ephemeral-boundary" in result.fix


def test_every_bootstrap_problem_is_reported_at_once(aws: Aws) -> None:
    toolkit("CDKToolkit-ephci", qualifier="other", version="4")
    results = preflight.check_bootstrap(aws, req(), EPHCI)
    assert [r.status for r in results] == [Status.FAIL] * 3
    assert ["older than 6" in results[0].detail, "qualifier other" in results[1].detail] == [True, True]


def test_cli_reads_the_workflow_environment(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The workflow sets the qualifier and boundary in its env: preflight checks that bootstrap."""
    toolkit("CDKToolkit")
    monkeypatch.setenv("EKS_LLM_STACK_BOOTSTRAP_QUALIFIER", "ephci")
    monkeypatch.setenv("EKS_LLM_STACK_PERMISSIONS_BOUNDARY", "eks-llm-stack-ephemeral-boundary")
    assert main(["preflight", "-p", "ci-ephemeral", "--width", "400"]) == 1
    out = capsys.readouterr().out
    assert "stack CDKToolkit-ephci not found" in out


def test_cli_toolkit_stack_name_option(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    toolkit("Boot", qualifier="ephci")
    main(["preflight", "-p", "ci-ephemeral", "--qualifier", "ephci", "--toolkit-stack-name", "Boot", "--width", "400"])
    rows = [line for line in capsys.readouterr().out.splitlines() if "cdk bootstrap" in line]
    assert rows and "pass" in rows[0] and "Boot" in rows[0], rows
