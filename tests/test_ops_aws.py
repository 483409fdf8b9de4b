"""The AWS environment, retries and bounded waits of the ops commands; their CLI wiring."""

from __future__ import annotations

from collections.abc import Iterator

import botocore.endpoint
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from eks_llm_stack.cli import main
from eks_llm_stack.ops.aws import Aws, WaitTimeout, wait_until

REGION = "us-east-1"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", REGION)
    yield


def test_aws_region_environment_wins_over_the_profile(env: None) -> None:
    assert Aws.from_env("eu-west-1").region_name == REGION


def test_aws_endpoint_url_is_honoured(env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    assert Aws.from_env().client("sts").meta.endpoint_url == "http://127.0.0.1:4566"


def test_clients_use_standard_retry_mode(env: None) -> None:
    config = Aws.from_env().client("ec2").meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": 8}


def test_throttling_is_retried_until_it_succeeds(env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(botocore.endpoint.time, "sleep", lambda s: None)  # keep the backoff, skip the wait
    with mock_aws():
        aws = Aws.from_env()
        sts = aws.client("sts")
        throttles = {"left": 2}

        def throttle(request: object, **_: object) -> AWSResponse | None:
            if throttles["left"]:
                throttles["left"] -= 1
                body = b"<ErrorResponse><Error><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>"
                return AWSResponse("https://sts.amazonaws.com/", 400, {}, _Raw(body))
            return None

        sts.meta.events.register_first("before-send.sts.GetCallerIdentity", throttle)
        identity = sts.get_caller_identity()
    assert identity["Account"] == "123456789012"
    assert identity["ResponseMetadata"]["RetryAttempts"] == 2


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: object) -> Iterator[bytes]:
        yield self.body


def test_wait_until_reports_progress_and_returns_the_final_state() -> None:
    states = iter([(False, "CREATING"), (False, "CREATING"), (True, "ACTIVE")])
    seen: list[str] = []
    assert (
        wait_until("cluster", lambda: next(states), timeout=60, interval=0, progress=seen.append, sleep=lambda s: None)
        == "ACTIVE"
    )
    assert [s.split(" (")[0] for s in seen] == ["cluster: CREATING", "cluster: ACTIVE"]


def test_wait_until_times_out_naming_what_and_the_last_state() -> None:
    ticks = iter(range(0, 1000, 30))
    with pytest.raises(
        WaitTimeout,
        match=r"gave up waiting for stack X to be deleted after 90s \(timeout 90s\); last state: DELETE_IN_PROGRESS",
    ):
        wait_until(
            "stack X to be deleted",
            lambda: (False, "DELETE_IN_PROGRESS"),
            timeout=90,
            sleep=lambda s: None,
            clock=lambda: next(ticks),
        )


def test_cli_list_prints_no_clusters_on_an_empty_account(env: None, capsys: pytest.CaptureFixture[str]) -> None:
    with mock_aws():
        assert main(["ephemeral", "list"]) == 0
    assert capsys.readouterr().out == "no ephemeral clusters\n"


def test_cli_down_rejects_a_bad_name_with_exit_2(env: None, capsys: pytest.CaptureFixture[str]) -> None:
    with mock_aws():
        assert main(["ephemeral", "down", "Bad_Name"]) == 2
    assert "--name: is not a usable cluster name" in capsys.readouterr().err


def test_cli_up_refuses_a_non_ephemeral_profile_with_exit_2(
    env: None, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "prod.yaml"
    path.write_text("prefix: prod\n")
    with mock_aws():
        assert main(["ephemeral", "up", "-p", str(path)]) == 2
    assert "fix: use an ephemeral profile" in capsys.readouterr().err
