"""Every preflight check, each with a passing and a failing account (moto; Stubber where moto lacks the API)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from eks_llm_stack.config import validate_profile
from eks_llm_stack.ops import preflight
from eks_llm_stack.ops.aws import Aws
from eks_llm_stack.ops.preflight import Status, run_preflight
from eks_llm_stack.ops.requirements import PoolRequirement, Requirements, requirements_of

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", REGION)
    with mock_aws():
        yield Aws.from_env()


def req(**changes: object) -> Requirements:
    base: dict[str, object] = {"account": ACCOUNT, "region": REGION, "kubernetes_version": "1.35"}
    base.update(changes)
    return Requirements(**base)  # type: ignore[arg-type]


def statuses(results: list[preflight.CheckResult]) -> list[Status]:
    return [r.status for r in results]


# --- credentials ----------------------------------------------------------------------------


def test_credentials_pass_when_account_and_region_match(aws: Aws) -> None:
    assert statuses(preflight.check_credentials(aws, req())) == [Status.PASS]


def test_credentials_fail_on_another_account(aws: Aws) -> None:
    [result] = preflight.check_credentials(aws, req(account="210987654321"))
    assert result.status is Status.FAIL
    assert "account 123456789012" in result.detail and "targets 210987654321" in result.detail
    assert "AWS_PROFILE" in result.fix


def test_credentials_fail_on_another_region(aws: Aws) -> None:
    [result] = preflight.check_credentials(aws, req(region="eu-west-1"))
    assert result.status is Status.FAIL
    assert "export AWS_REGION=eu-west-1" in result.fix


def test_missing_credentials_fail_and_skip_the_other_checks(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    no_creds = Aws(region=REGION)
    monkeypatch.setattr(no_creds, "client", lambda service: _raise_no_credentials())
    report = run_preflight(no_creds, req())
    assert report.results[0].status is Status.FAIL and "sso login" in report.results[0].fix
    assert {r.status for r in report.results[1:]} == {Status.SKIP}
    assert report.exit_code == 1


def _raise_no_credentials() -> None:
    from botocore.exceptions import NoCredentialsError

    raise NoCredentialsError()


# --- bootstrap ------------------------------------------------------------------------------


def _bootstrap(version: str) -> None:
    template = {
        "Resources": {"Bucket": {"Type": "AWS::S3::Bucket"}},
        "Outputs": {"BootstrapVersion": {"Value": version}},
    }
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName="CDKToolkit", TemplateBody=json.dumps(template)
    )


def test_bootstrap_passes_with_a_current_toolkit_stack(aws: Aws) -> None:
    _bootstrap("29")
    [result] = preflight.check_bootstrap(aws, req())
    assert result.status is Status.PASS and "version 29" in result.detail


def test_bootstrap_fails_without_the_toolkit_stack(aws: Aws) -> None:
    [result] = preflight.check_bootstrap(aws, req())
    assert result.status is Status.FAIL
    assert result.fix == f"run 'cdk bootstrap aws://{ACCOUNT}/{REGION}'"


def test_bootstrap_fails_when_too_old(aws: Aws) -> None:
    _bootstrap("4")
    [result] = preflight.check_bootstrap(aws, req())
    assert result.status is Status.FAIL and "older than 6" in result.detail


# --- quotas (moto serves only VPC quotas: Stubber) -------------------------------------------


def _quota(stub: Stubber, code: str, value: float) -> None:
    stub.add_response(
        "get_service_quota",
        {"Quota": {"ServiceCode": "ec2", "QuotaCode": code, "Value": value}},
        {"ServiceCode": "ec2", "QuotaCode": code},
    )


G_POOL = PoolRequirement(
    name="infer", instance_types=("g6e.12xlarge",), capacity_types=("spot", "on-demand"), max_gpus=8
)


def test_quota_passes_when_it_covers_the_pool_maximum(aws: Aws) -> None:
    # 8 GPUs of g6e.12xlarge (4 GPUs, 48 vCPUs) = 2 instances = 96 vCPUs, in each capacity type.
    with Stubber(aws.client("service-quotas")) as stub:
        _quota(stub, "L-DB2E81BA", 96)
        _quota(stub, "L-3819A6DF", 192)
        results = preflight.check_quotas(aws, req(pools=(G_POOL,)))
        stub.assert_no_pending_responses()
    assert statuses(results) == [Status.PASS, Status.PASS]
    assert "96 needed" in results[0].detail


def test_quota_fails_below_the_pool_maximum_with_the_increase_command(aws: Aws) -> None:
    with Stubber(aws.client("service-quotas")) as stub:
        _quota(stub, "L-DB2E81BA", 96)
        _quota(stub, "L-3819A6DF", 64)
        results = preflight.check_quotas(aws, req(pools=(G_POOL,)))
    failed = [r for r in results if r.status is Status.FAIL]
    assert len(failed) == 1
    assert "All G and VT Spot Instance Requests (L-3819A6DF): 64 vCPUs < 96 needed" in failed[0].detail
    assert "--quota-code L-3819A6DF --desired-value 96" in failed[0].fix


def test_quota_adds_up_pools_sharing_one_quota(aws: Aws) -> None:
    pools = (
        PoolRequirement(name="a", instance_types=("p5.48xlarge",), max_gpus=8),
        PoolRequirement(name="b", instance_types=("p4d.24xlarge",), max_gpus=16),
    )
    with Stubber(aws.client("service-quotas")) as stub:
        _quota(stub, "L-417A185B", 383)
        [result] = preflight.check_quotas(aws, req(pools=pools))
    # p5.48xlarge: 1 x 192 vCPUs; p4d.24xlarge: 2 x 96 vCPUs; one P quota for both.
    assert result.status is Status.FAIL
    assert "383 vCPUs < 384 needed (a 192, b 192)" in result.detail


def test_quota_fails_for_a_pool_without_a_limit(aws: Aws) -> None:
    pool = PoolRequirement(name="open", instance_types=("g6.xlarge",))
    [result] = preflight.check_quotas(aws, req(pools=(pool,)))
    assert result.status is Status.FAIL and "no upper bound" in result.detail


# --- offerings ------------------------------------------------------------------------------


def test_offerings_pass_where_the_type_is_offered(aws: Aws) -> None:
    pool = PoolRequirement(name="p", instance_types=("p4d.24xlarge",), max_gpus=8, zones=("us-east-1a", "us-east-1b"))
    [result] = preflight.check_offerings(aws, req(pools=(pool,)))
    assert result.status is Status.PASS


def test_offerings_fail_where_the_type_is_not_offered(aws: Aws) -> None:
    pool = PoolRequirement(name="p", instance_types=("p4d.24xlarge",), max_gpus=8, zones=("us-east-1e", "us-east-1f"))
    [result] = preflight.check_offerings(aws, req(pools=(pool,)))
    assert result.status is Status.FAIL
    assert "p4d.24xlarge not offered in us-east-1e, us-east-1f" in result.detail


def test_offerings_fail_for_a_placement_group_spanning_zones(aws: Aws) -> None:
    pool = PoolRequirement(
        name="train",
        instance_types=("p5.48xlarge",),
        max_gpus=16,
        placement_group=True,
        zones=("us-east-1a", "us-east-1b"),
    )
    [result] = preflight.check_offerings(aws, req(pools=(pool,)))
    assert result.status is Status.FAIL and "placement group" in result.detail
    assert "pin pool 'train' to the one zone" in result.fix


def test_offerings_check_the_single_zone_of_a_placement_group(aws: Aws) -> None:
    ok = PoolRequirement(
        name="a", instance_types=("p4d.24xlarge",), max_gpus=8, placement_group=True, zones=("us-east-1a",)
    )
    bad = PoolRequirement(
        name="b", instance_types=("p4d.24xlarge",), max_gpus=8, placement_group=True, zones=("us-east-1e",)
    )
    assert statuses(preflight.check_offerings(aws, req(pools=(ok, bad)))) == [Status.PASS, Status.FAIL]


# --- capacity reservations (moto lacks DescribeCapacityReservations: Stubber) -----------------


def _reservation(state: str, kind: str = "capacity-block", itype: str = "p5.48xlarge") -> dict[str, object]:
    return {
        "CapacityReservationId": "cr-0123456789abcdef0",
        "InstanceType": itype,
        "AvailabilityZone": "us-east-1a",
        "State": state,
        "ReservationType": kind,
        "StartDate": datetime(2026, 1, 1, tzinfo=UTC),
    }


RESERVED = PoolRequirement(
    name="train", instance_types=("p5.48xlarge",), max_gpus=8, reserved=True, zones=("us-east-1a",)
)


def _reservations_response(aws: Aws, *reservations: dict[str, object]) -> Stubber:
    stub = Stubber(aws.client("ec2"))
    stub.add_response(
        "describe_capacity_reservations",
        {"CapacityReservations": list(reservations)},
        {"Filters": [{"Name": "instance-type", "Values": ["p5.48xlarge"]}]},
    )
    return stub


def test_reservations_pass_with_an_active_capacity_block(aws: Aws) -> None:
    with _reservations_response(aws, _reservation("active")):
        [result] = preflight.check_reservations(aws, req(pools=(RESERVED,)))
    assert result.status is Status.PASS and "Capacity Block cr-0123456789abcdef0" in result.detail


def test_reservations_fail_when_the_block_is_only_scheduled(aws: Aws) -> None:
    with _reservations_response(aws, _reservation("scheduled")):
        [result] = preflight.check_reservations(aws, req(pools=(RESERVED,)))
    assert result.status is Status.FAIL and "scheduled" in result.detail
    assert "Capacity Block" in result.fix


def test_reservations_fail_when_none_exist(aws: Aws) -> None:
    with _reservations_response(aws):
        [result] = preflight.check_reservations(aws, req(pools=(RESERVED,)))
    assert result.status is Status.FAIL and "found: none" in result.detail


# --- Kubernetes version (moto lacks DescribeClusterVersions: Stubber) --------------------------


def _versions(aws: Aws, *versions: dict[str, object]) -> Stubber:
    stub = Stubber(aws.client("eks"))
    stub.add_response(
        "describe_cluster_versions",
        {"clusterVersions": list(versions)},
        {"clusterVersions": ["1.35"], "includeAll": True},
    )
    return stub


def test_kubernetes_version_passes_in_standard_support(aws: Aws) -> None:
    with _versions(aws, {"clusterVersion": "1.35", "versionStatus": "STANDARD_SUPPORT"}):
        [result] = preflight.check_kubernetes_version(aws, req())
    assert result.status is Status.PASS


def test_kubernetes_version_fails_when_eks_does_not_offer_it(aws: Aws) -> None:
    with _versions(aws):
        [result] = preflight.check_kubernetes_version(aws, req())
    assert result.status is Status.FAIL and "does not offer Kubernetes 1.35" in result.detail


def test_kubernetes_version_fails_when_unsupported(aws: Aws) -> None:
    with _versions(aws, {"clusterVersion": "1.35", "versionStatus": "UNSUPPORTED"}):
        [result] = preflight.check_kubernetes_version(aws, req())
    assert result.status is Status.FAIL and "(unsupported)" in result.detail


# --- secrets --------------------------------------------------------------------------------


def test_secrets_pass_when_they_have_a_value(aws: Aws) -> None:
    boto3.client("secretsmanager", region_name=REGION).create_secret(Name="hf-token", SecretString="hf_x")
    [result] = preflight.check_secrets(aws, req(secret_names=("hf-token",)))
    assert result.status is Status.PASS


def test_secrets_fail_when_missing_or_empty_all_reported(aws: Aws) -> None:
    boto3.client("secretsmanager", region_name=REGION).create_secret(Name="ngc-key")
    results = preflight.check_secrets(aws, req(secret_names=("hf-token", "ngc-key")))
    assert statuses(results) == [Status.FAIL, Status.FAIL]
    assert "does not exist" in results[0].detail and "create-secret --name hf-token" in results[0].fix
    assert "no value set" in results[1].detail and "put-secret-value --secret-id ngc-key" in results[1].fix


def test_secrets_the_data_stack_creates_warn_and_never_say_create(aws: Aws) -> None:
    boto3.client("secretsmanager", region_name=REGION).create_secret(Name="llm/ngc-api-key")
    boto3.client("secretsmanager", region_name=REGION).create_secret(Name="llm/set", SecretString="x")
    results = preflight.check_secrets(
        aws, req(created_secret_names=("llm/huggingface-token", "llm/ngc-api-key", "llm/set"))
    )
    assert statuses(results) == [Status.WARN, Status.WARN, Status.PASS]
    assert "the Data stack creates it" in results[0].detail and "create-secret" not in results[0].fix
    assert "put-secret-value --secret-id llm/huggingface-token" in results[0].fix
    assert "no value set" in results[1].detail and "put-secret-value --secret-id llm/ngc-api-key" in results[1].fix


def test_secret_requirements_are_the_names_the_stacks_use() -> None:
    from eks_llm_stack.config import load_profile

    default = requirements_of(load_profile("default"))
    # What the Data stack creates: '<prefix>/<name>' (constructs/model_secrets.py), not the bare name.
    assert default.created_secret_names == ("llm/huggingface-token", "llm/ngc-api-key")
    assert default.secret_names == ()
    imported = requirements_of(
        validate_profile({"observability": {"grafana_admin_secret": "team/grafana"}, "secrets": {"names": []}})
    )
    assert (imported.secret_names, imported.created_secret_names) == (("team/grafana",), ())
    off = requirements_of(validate_profile({"secrets": {"enabled": False}, "observability": {"enabled": False}}))
    assert (off.secret_names, off.created_secret_names) == ((), ())


def test_requirements_refuse_what_synth_refuses() -> None:
    from eks_llm_stack.errors import ConfigError

    profile = validate_profile(
        {
            "compute": {"pools": [{"name": "small", "instance_types": ["g6.xlarge"]}]},
            "models": [{"name": "big", "model": "llama-3.1-8b", "source": "s3://bucket/llama", "pool": "smal"}],
        }
    )
    with pytest.raises(ConfigError) as err:
        requirements_of(profile)
    assert any(
        p.field.startswith("models[0]") and "names no pool of compute.pools" in p.message for p in err.value.problems
    )


# --- imported VPC ---------------------------------------------------------------------------


def _vpc(
    public_zones: tuple[str, ...] = (), private_zones: tuple[str, ...] = ("us-east-1a", "us-east-1b")
) -> tuple[str, list[str]]:
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnets = []
    for i, zone in enumerate(private_zones + public_zones):
        subnets.append(
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.1.{i}.0/24", AvailabilityZone=zone)["Subnet"]["SubnetId"]
        )
    if public_zones:
        igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
        table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
        for subnet in subnets[len(private_zones) :]:
            ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    return vpc, subnets


def test_vpc_passes_with_private_subnets_in_two_zones(aws: Aws) -> None:
    vpc, subnets = _vpc()
    [result] = preflight.check_vpc(aws, req(vpc_id=vpc, private_subnet_ids=tuple(subnets)))
    assert result.status is Status.PASS and "us-east-1a, us-east-1b" in result.detail


def test_vpc_fails_when_private_subnets_span_one_zone(aws: Aws) -> None:
    vpc, subnets = _vpc(private_zones=("us-east-1a",), public_zones=("us-east-1b",))
    results = preflight.check_vpc(aws, req(vpc_id=vpc, private_subnet_ids=tuple(subnets)))
    details = " | ".join(r.detail for r in results)
    assert statuses(results) == [Status.FAIL, Status.FAIL]
    assert f"{subnets[1]} route 0.0.0.0/0 to an internet gateway" in details
    assert "span 1 zone(s)" in details


def test_vpc_fails_when_it_does_not_exist(aws: Aws) -> None:
    [result] = preflight.check_vpc(
        aws, req(vpc_id="vpc-0000000000000000f", private_subnet_ids=("subnet-1", "subnet-2"))
    )
    assert result.status is Status.FAIL and "not found" in result.detail


# --- the whole run --------------------------------------------------------------------------


def test_report_renders_every_row_and_exits_1_on_a_failure(aws: Aws) -> None:
    with _versions(aws, {"clusterVersion": "1.35", "versionStatus": "STANDARD_SUPPORT"}):
        report = run_preflight(aws, req(secret_names=("missing",)))
    text = preflight.render(report, width=200)
    assert report.exit_code == 1
    assert "cdk bootstrap" in text and "create-secret --name missing" in text
    assert text.rstrip().endswith("preflight FAILED: 2 check(s) failed")


def test_requirements_are_read_from_a_profile() -> None:
    profile = validate_profile(
        {
            "account": ACCOUNT,
            "region": REGION,
            "network": {
                "vpc_id": "vpc-0abc",
                "private_subnet_ids": ["subnet-a", "subnet-b"],
                "availability_zones": ["us-east-1a", "us-east-1b"],
            },
        }
    )
    r = requirements_of(profile)
    assert (r.account, r.region, r.vpc_id, r.network_zones) == (
        ACCOUNT,
        REGION,
        "vpc-0abc",
        ("us-east-1a", "us-east-1b"),
    )


def test_quota_warns_about_families_outside_g_and_p(aws: Aws) -> None:
    pool = PoolRequirement(name="mix", instance_types=("g6.xlarge", "trn1.2xlarge"), max_vcpus=32)
    with Stubber(aws.client("service-quotas")) as stub:
        _quota(stub, "L-DB2E81BA", 32)
        results = preflight.check_quotas(aws, req(pools=(pool,)))
    assert statuses(results) == [Status.WARN, Status.PASS]
    assert "trn1.2xlarge is outside the G/VT and P quotas" in results[0].detail


# --- the shipped production profile, through the plan -----------------------------------------


def _production_requirements() -> Requirements:
    import dataclasses

    from eks_llm_stack.config import load_profile

    return dataclasses.replace(requirements_of(load_profile("production.example")), region=REGION, account=None)


def test_production_family_pools_reach_preflight_with_their_instance_types_and_limits() -> None:
    pools = {p.name: p for p in _production_requirements().pools}
    for name in ("inference-spot", "inference-on-demand"):
        # Family-based pools (g5/g6/g6e): the plan resolves them to concrete catalog types.
        assert len(pools[name].instance_types) > 1 and "g6e.12xlarge" in pools[name].instance_types
        assert pools[name].max_gpus == 16
    assert pools["training"].instance_types == ("p5.48xlarge",)


def test_production_offerings_are_checked_for_the_inference_pools(aws: Aws) -> None:
    results = preflight.check_offerings(aws, _production_requirements())
    checked = {r.detail.split("'")[1]: r for r in results if r.detail.startswith("pool '")}
    assert set(checked) >= {"inference-spot", "inference-on-demand", "training"}
    assert "g6e.12xlarge in us-east-1a" in checked["inference-spot"].detail


def test_production_quotas_cover_the_inference_pools(aws: Aws) -> None:
    with Stubber(aws.client("service-quotas")) as stub:
        _quota(stub, "L-DB2E81BA", 10_000)  # on-demand G and VT
        _quota(stub, "L-417A185B", 10_000)  # on-demand P
        _quota(stub, "L-3819A6DF", 10)  # spot G and VT: too small for the spot inference pool
        results = preflight.check_quotas(aws, _production_requirements())
        stub.assert_no_pending_responses()
    details = " | ".join(r.detail for r in results)
    assert "inference-on-demand" in details and "training" in details
    [spot] = [r for r in results if "L-3819A6DF" in r.detail]
    assert spot.status is Status.FAIL and "inference-spot" in spot.detail
