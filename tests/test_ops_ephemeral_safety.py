"""Ephemeral clusters can never touch what they did not create (moto; no real AWS).

Each test is one way the old commands wiped or deployed over something that was not theirs.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError
from botocore.stub import Stubber
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from eks_llm_stack.config import load_profile, validate_profile
from eks_llm_stack.config.ephemeral import TAG_DEPLOYMENT_ID, TAG_PROFILE, context_problems, platform_tags
from eks_llm_stack.config.profile import stack_prefix_of
from eks_llm_stack.errors import ConfigError
from eks_llm_stack.ops import ephemeral as eph
from eks_llm_stack.ops.aws import Aws, AwsAccessError, aws_errors, aws_failure
from eks_llm_stack.ops.ephemeral import TAG_EPHEMERAL, TAG_EXPIRES, TAG_NAME, EphemeralError

# The `aws` fixture (moto, dummy credentials, us-east-1) comes from test_ops_ephemeral.
from tests.test_ops_ephemeral import (
    DEP,
    FAST,
    NOW,
    REGION,
    FakeCdk,
    ephemeral_profile,
    instance_state,
    live_stacks,
    quiet,
    run_instance,
    seed_stacks,
    tags,
    template,
)

PAST = NOW - timedelta(hours=1)


@pytest.fixture(name="aws")
def moto_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", REGION)
    with mock_aws():
        yield Aws.from_env()


def _up(aws: Aws, name: str, tmp_path: Path, **kw: Any) -> eph.UpResult:
    cdk = kw.pop("cdk", None) or FakeCdk(aws)
    return eph.up(
        aws, ephemeral_profile(), runner=cdk, name=name, workdir=tmp_path, now=NOW, timeouts=FAST, progress=quiet, **kw
    )


def _prod_stacks(prefix: str = "llm-prod") -> list[str]:
    """A production platform as plain 'cdk deploy' makes it: no ephemeral tags, Data protected."""
    platform = {TAG_PROFILE: "production.example", TAG_NAME: prefix, "cost-center": "ml"}
    names = seed_stacks(prefix, platform, ("Network", "Platform", "Serving"), output_id=None)
    names += seed_stacks(prefix, platform, ("Data",), output_id=None, protected=True)
    return names


# --- deploy over production ------------------------------------------------------------------


def test_up_refuses_the_prefix_of_a_shipped_profile(aws: Aws, tmp_path: Path) -> None:
    prod = _prod_stacks()
    cdk = FakeCdk(aws)
    with pytest.raises(
        ConfigError, match=r"--name: is the prefix of .*production\.example\.yaml \(prefix 'llm-prod'\).*\n.*fix: pick"
    ):
        _up(aws, "llm-prod", tmp_path, cdk=cdk)
    assert cdk.calls == [] and live_stacks() == set(prod)


@pytest.mark.parametrize("name", ["llm", "llm-ci"])
def test_up_refuses_every_shipped_prefix(aws: Aws, tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match="is the prefix of"):
        _up(aws, name, tmp_path)


def test_up_refuses_the_prefix_of_a_user_profile_beside_the_one_given(aws: Aws, tmp_path: Path) -> None:
    (tmp_path / "team-prod.yaml").write_text("prefix: team-prod\n")
    with pytest.raises(ConfigError, match=r"is the prefix of .*team-prod\.yaml \(prefix 'team-prod'\)"):
        _up(aws, "team-prod", tmp_path, profile_dirs=[tmp_path])


def test_up_refuses_a_name_whose_stacks_exist_untagged(aws: Aws, tmp_path: Path) -> None:
    # Not a shipped prefix, but a platform someone deployed with their own profile.
    prod = _prod_stacks("acme-prod")
    cdk = FakeCdk(aws)
    with pytest.raises(EphemeralError, match=r"stacks of 'acme-prod' exist already: AcmeProd-Network"):
        _up(aws, "acme-prod", tmp_path, cdk=cdk)
    assert cdk.calls == [] and live_stacks() == set(prod)


# --- colliding names -------------------------------------------------------------------------


def test_names_that_used_to_collide_get_distinct_stacks(aws: Aws, tmp_path: Path) -> None:
    first = _up(aws, "ci-42-11", tmp_path)
    second = _up(aws, "ci-421-1", tmp_path)
    assert eph.stack_names_for("ci-42-11")[0] == "Ci-42-11-Network"
    assert eph.stack_names_for("ci-421-1")[0] == "Ci-421-1-Network"
    clusters = {c.name: c for c in eph.find_clusters(aws)}
    assert {s.deployment_id for s in clusters["ci-42-11"].stacks} == {first.deployment_id}
    assert {s.deployment_id for s in clusters["ci-421-1"].stacks} == {second.deployment_id}
    assert first.deployment_id != second.deployment_id


def test_the_shipped_profiles_keep_their_stack_names() -> None:
    assert {n: load_profile(n).stack_prefix for n in ("default", "ci-ephemeral", "production.example")} == {
        "default": "Llm",
        "ci-ephemeral": "LlmCi",
        "production.example": "LlmProd",
    }


_NAMES = st.from_regex(r"[a-z][a-z0-9-]{0,19}", fullmatch=True)


@given(_NAMES, _NAMES)
def test_stack_prefixes_are_injective(a: str, b: str) -> None:
    assert (stack_prefix_of(a) == stack_prefix_of(b)) == (a == b)


# --- forged tags -----------------------------------------------------------------------------


def test_reserved_tag_keys_are_refused_at_synth_with_the_fix() -> None:
    with pytest.raises(ConfigError) as err:
        validate_profile(
            {"tags": {"eks-llm-stack:ephemeral": "true", "Eks-Llm-Stack:expires-at": "2020-01-01T00:00:00Z"}}
        )
    text = str(err.value)
    assert (
        "tags: tag keys ['eks-llm-stack:ephemeral', 'Eks-Llm-Stack:expires-at'] are reserved: set by the library"
        in text
    )
    assert "fix: remove them from 'tags'" in text


def test_library_tags_are_applied_after_user_tags() -> None:
    tags = platform_tags(
        profile_name="p",
        prefix="ci-1",
        user_tags={TAG_NAME: "prod", "team": "ml"},
        ephemeral=True,
        expires_at="2026-11-21T18:00:00Z",
        deployment_id=DEP,
    )
    assert tags[TAG_NAME] == "ci-1" and tags["team"] == "ml" and next(iter(tags)) == "team"


def test_a_bad_expires_at_or_deployment_id_context_is_refused_at_synth() -> None:
    from eks_llm_stack.synth import build

    profile = validate_profile({"name": "ci", "ephemeral": True})
    with pytest.raises(ConfigError) as err:
        build(profile, expires_at="2026-11-21 18:00", deployment_id="XYZ")
    text = str(err.value)
    assert "expires_at (context): is not an ISO 8601 UTC time" in text and "fix: pass -c expires_at=" in text
    assert "deployment_id (context): is not 16 lowercase hex digits" in text
    problems = context_problems(ephemeral=False, expires_at="2026-11-21T18:00:00Z", deployment_id=None)
    assert [p.field for p in problems] == ["expires_at (context)"]


@pytest.mark.parametrize(
    "forged",
    [
        tags("llm-prod", expires=PAST, deployment_id=None),  # the reserved keys a profile used to be able to set
        tags("llm-prod", expires=PAST, deployment_id="ffffffffffffffff"),  # a deployment id with no stack output
    ],
)
def test_the_reaper_ignores_forged_tags(aws: Aws, forged: dict[str, str]) -> None:
    names = seed_stacks("llm-prod", forged, output_id=None)
    report = eph.reap(aws, now=NOW, dry_run=False, timeouts=FAST, progress=quiet)
    assert live_stacks() == set(names) and report.expired == [] and sorted(report.ignored) == sorted(names)
    assert eph.down(aws, "llm-prod", timeouts=FAST, progress=quiet).deleted_stacks == []
    assert live_stacks() == set(names)


# --- delete exactly what was decided ---------------------------------------------------------


def test_a_reused_name_survives_a_reap(aws: Aws) -> None:
    old = seed_stacks("ci-7", tags("ci-7", expires=PAST))
    newer = "fedcba9876543210"

    def reuse_the_name(message: str) -> None:
        # Between reap's judgement and its delete: the old cluster is removed by its own job
        # and a new run deploys under the same name.
        if "tearing down" in message:
            cfn = boto3.client("cloudformation", region_name=REGION)
            for stack in old:
                cfn.delete_stack(StackName=stack)
            seed_stacks("ci-7", tags("ci-7", expires=NOW + timedelta(hours=3), deployment_id=newer))

    report = eph.reap(aws, now=NOW, dry_run=False, timeouts=FAST, progress=reuse_the_name)
    assert report.expired == ["ci-7"]
    [cluster] = eph.find_clusters(aws)
    assert cluster.deployment_id == newer and len(cluster.stacks) == 4


def test_down_re_checks_the_expiry_it_was_judged_by(aws: Aws) -> None:
    names = seed_stacks("ci-8", tags("ci-8", expires=NOW + timedelta(hours=1)))
    cluster = eph.find_cluster(aws, "ci-8")
    assert cluster is not None
    report = eph.down(
        aws,
        "ci-8",
        deployment_id=DEP,
        stack_ids=[s.stack_id for s in cluster.stacks],
        expired_before=NOW,
        timeouts=FAST,
        progress=quiet,
    )
    assert live_stacks() == set(names) and len(report.skipped_stacks) == 4
    assert "no longer expires before 2026-11-21T12:00:00Z" in report.skipped_stacks[0]


def test_a_protected_stack_is_never_deleted(aws: Aws) -> None:
    seed_stacks("ci-9", tags("ci-9", expires=PAST), ("Network", "Platform", "Serving"))
    [data] = seed_stacks("ci-9", tags("ci-9", expires=PAST), ("Data",), protected=True)
    reaped = eph.reap(aws, now=NOW, dry_run=False, timeouts=FAST, progress=quiet)
    assert reaped.untouched == ["ci-9"] and len(live_stacks()) == 4
    report = eph.down(aws, "ci-9", timeouts=FAST, progress=quiet)
    assert data in live_stacks()
    assert report.skipped_stacks == [f"{data}: termination protection is on"] and not report.clean


def test_dry_runs_change_nothing(aws: Aws, tmp_path: Path) -> None:
    names = seed_stacks("ci-10", tags("ci-10", expires=PAST))
    node = run_instance({**tags("ci-10", expires=PAST), "kubernetes.io/cluster/ci-10-cluster": "owned"})
    reaped = eph.reap(aws, now=NOW, timeouts=FAST, progress=quiet)  # dry by default
    assert reaped.dry_run and reaped.expired == ["ci-10"] and reaped.downs == []
    down = eph.down(aws, "ci-10", dry_run=True, timeouts=FAST, progress=quiet)
    assert len([w for w in down.would_delete if w.startswith("stack ")]) == 4
    assert f"EC2 instance {node}" in down.would_delete
    cdk = FakeCdk(aws)
    result = _up(aws, "ci-11", tmp_path, cdk=cdk, dry_run=True)
    assert result.dry_run and cdk.calls == [] and not list(tmp_path.iterdir())
    assert live_stacks() == set(names) and instance_state(node) == "running"


def test_reap_scans_every_region_it_is_given(aws: Aws) -> None:
    east = seed_stacks("ci-e", tags("ci-e", expires=PAST))
    west = seed_stacks("ci-w", tags("ci-w", expires=PAST), region="us-west-2")
    report = eph.reap(aws, regions=["us-east-1", "us-west-2"], now=NOW, dry_run=False, timeouts=FAST, progress=quiet)
    assert sorted(report.expired) == ["us-east-1/ci-e", "us-west-2/ci-w"]
    assert live_stacks() == set() == live_stacks("us-west-2") and east and west


# --- TTL -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ttl", "message"),
    [
        ("٣h", "is not a duration"),  # Arabic-Indic digit: \d would have taken it
        ("99999999999999999999d", "is not a duration"),  # used to crash 'up' with OverflowError
        ("8d", "is longer than the maximum lifetime 7d"),
        ("0h", "is zero"),
        ("4 h", "is not a duration"),
    ],
)
def test_a_bad_ttl_is_refused_at_synth(ttl: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        validate_profile({"ephemeral": True, "ttl": ttl})
    assert f"ttl: {ttl!r} {message}" in str(err.value) and "fix: write a whole number (ASCII digits)" in str(err.value)


def test_max_ttl_is_configurable_and_bounded() -> None:
    assert validate_profile({"ttl": "10d", "max_ttl": "14d"}).ttl == "10d"
    with pytest.raises(ConfigError, match=r"max_ttl: '100d' is longer than the maximum lifetime 90d"):
        validate_profile({"max_ttl": "100d"})


def test_up_refuses_a_ttl_beyond_the_profiles_maximum(aws: Aws, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--ttl: '30d' is longer than the maximum lifetime 7d"):
        _up(aws, "ci-12", tmp_path, ttl="30d")


def test_a_malformed_expiry_is_never_taken_for_another_format() -> None:
    assert eph.parse_iso("2026-11-21T18:00:00Z") is not None
    for value in ("2026-11-21T18:00:00", "2026-11-21T18:00:00+00:00", "2026-13-01T00:00:00Z", "soon", None):
        assert eph.parse_iso(value) is None


# --- clear errors ----------------------------------------------------------------------------


def _client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "DescribeStacks")


@pytest.mark.parametrize(
    ("exc", "what", "fix"),
    [
        (NoCredentialsError(), "no AWS credentials found", "set AWS_PROFILE"),
        (_client_error("ExpiredToken"), "the AWS credentials have expired", "refresh them"),
        (
            EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
            "cannot reach the AWS endpoint",
            "AWS_ENDPOINT_URL",
        ),
        (_client_error("Throttling"), "AWS is throttling the requests", "wait a few minutes"),
    ],
)
def test_aws_access_failures_become_one_message_with_the_fix(exc: Exception, what: str, fix: str) -> None:
    failure = aws_failure(exc)
    assert failure is not None and what in failure[0] and fix in failure[1]
    with pytest.raises(AwsAccessError) as err, aws_errors("eks-llm-stack ephemeral list"):
        raise exc
    assert str(err.value).startswith(f"eks-llm-stack ephemeral list: {what}") and "\n  fix: " in str(err.value)


def test_other_errors_are_not_dressed_up_as_access_failures() -> None:
    assert aws_failure(_client_error("AccessDenied")) is None and aws_failure(ValueError("x")) is None


def test_every_verb_exits_4_with_one_line_when_there_are_no_credentials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from eks_llm_stack.cli import main

    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_REGION", REGION)
    for argv in (
        ["ephemeral", "list"],
        ["ephemeral", "reap"],
        ["ephemeral", "down", "ci-1"],
        ["ephemeral", "up", "--name", "ci-1", "--dry-run", "--workdir", str(tmp_path)],
    ):
        assert main(argv) == 4, argv
        err = capsys.readouterr().err
        assert err.startswith(f"error: eks-llm-stack {' '.join(argv[:2])}: no AWS credentials found")
        assert "Traceback" not in err and "fix: set AWS_PROFILE" in err


def test_expired_credentials_exit_4_through_the_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from eks_llm_stack.cli import main
    from eks_llm_stack.ops import cli as ops_cli

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        session_aws = Aws(region=REGION)
        stub = Stubber(session_aws.client("cloudformation"))
        stub.add_client_error(
            "describe_stacks", "ExpiredToken", "The security token included in the request is expired"
        )
        stub.activate()
        monkeypatch.setattr(ops_cli, "_aws", lambda region=None: session_aws)
        assert main(["ephemeral", "list"]) == 4
    assert "the AWS credentials have expired (ExpiredToken)" in capsys.readouterr().err


# --- the property: the reaper never deletes what 'up' did not create -------------------------

_KEYS = st.sampled_from([TAG_EPHEMERAL, TAG_NAME, TAG_EXPIRES, TAG_DEPLOYMENT_ID, TAG_PROFILE, "team", "Name"])
_VALUES = st.one_of(
    st.sampled_from(["true", "TRUE", "false", "ci-1", "ci-2", "llm-prod", DEP, "2020-01-01T00:00:00Z"]),
    st.text(alphabet="abcdef0123456789-:TZ", min_size=1, max_size=20),
)
_TAG_SETS = st.dictionaries(_KEYS, _VALUES, max_size=6)


@pytest.mark.slow
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    foreign=st.lists(_TAG_SETS, min_size=1, max_size=3),
    instances=st.lists(st.dictionaries(_KEYS, _VALUES, min_size=1, max_size=6), max_size=2),
    ours=st.lists(st.sampled_from(["ci-1", "ci-2", "eph-x"]), max_size=2, unique=True),
)
def test_the_reaper_never_deletes_what_up_did_not_create(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
    foreign: list[dict[str, str]],
    instances: list[dict[str, str]],
    ours: list[str],
) -> None:
    """Any tags at all — reserved keys with plausible values included — on stacks and instances
    that 'up' did not deploy: after a reap far in the future, all of them are still there, and
    every cluster 'up' did deploy is gone."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", REGION)
    with mock_aws():
        aws_ = Aws.from_env()
        made_by_up: set[str] = set()
        for name in ours:
            _up(aws_, name, tmp_path_factory.mktemp("up"), ttl="1m")
            made_by_up |= set(eph.stack_names_for(name))
        cfn = boto3.client("cloudformation", region_name=REGION)
        not_ours = {f"Foreign{i}-Network" for i in range(len(foreign))}
        for i, tag_set in enumerate(foreign):
            # Tags are what anyone who can tag a stack can set; the template is not the app's.
            cfn.create_stack(
                StackName=f"Foreign{i}-Network",
                TemplateBody=template(None),
                Tags=[{"Key": k, "Value": v} for k, v in tag_set.items()],
            )
        nodes = [run_instance(t) for t in instances]
        eph.reap(aws_, now=NOW + timedelta(days=400), dry_run=False, timeouts=FAST, progress=quiet)
        left = live_stacks()
        assert not_ours <= left, "a stack 'up' did not create was deleted"
        assert not (made_by_up & left), "an expired cluster 'up' created was left"
        assert all(instance_state(n) == "running" for n in nodes)
