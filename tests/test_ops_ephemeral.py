"""Ephemeral clusters against moto: up, smoke, down, list, reap, and the reliability rules."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

from eks_llm_stack.config import Profile, validate_profile
from eks_llm_stack.config.ephemeral import DEPLOYMENT_ID_OUTPUT, TAG_DEPLOYMENT_ID
from eks_llm_stack.config.profile import stack_prefix_of
from eks_llm_stack.errors import ConfigError
from eks_llm_stack.ops import ephemeral as eph
from eks_llm_stack.ops.aws import Aws, WaitTimeout
from eks_llm_stack.ops.ephemeral import TAG_EPHEMERAL, TAG_EXPIRES, TAG_NAME, CommandResult, EphemeralError, Timeouts

REGION = "us-east-1"
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
FAST = Timeouts(deploy=60, cluster=60, model=60, stack_delete=60, interval=0)
down_module = importlib.import_module("eks_llm_stack.ops.ephemeral.down")
TEMPLATE = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})
#: The deployment id of the clusters the tests seed as if 'up' had made them.
DEP = "0123456789abcdef"


def template(output_id: str | None) -> str:
    body: dict[str, Any] = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}
    if output_id:
        body["Outputs"] = {DEPLOYMENT_ID_OUTPUT: {"Value": output_id}}
    return json.dumps(body)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", REGION)
    with mock_aws():
        yield Aws.from_env()


def quiet(_: str) -> None:
    pass


def tags(
    name: str,
    expires: datetime | None = NOW + timedelta(hours=4),
    ephemeral: str | None = "true",
    deployment_id: str | None = DEP,
) -> dict[str, str]:
    out = {TAG_NAME: name}
    if ephemeral is not None:
        out[TAG_EPHEMERAL] = ephemeral
    if expires is not None:
        out[TAG_EXPIRES] = eph.iso(expires)
    if deployment_id is not None:
        out[TAG_DEPLOYMENT_ID] = deployment_id
    return out


def _aws_tags(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in values.items()]


def seed_stacks(
    name: str,
    stack_tags: dict[str, str],
    suffixes: Sequence[str] = eph.STACK_ORDER,
    *,
    output_id: str | None = "from-tags",
    protected: bool = False,
    region: str = REGION,
) -> list[str]:
    """Stacks as the app names them; by default with the deployment-id output 'up' makes the app write."""
    cfn = boto3.client("cloudformation", region_name=region)
    names = [f"{stack_prefix_of(name)}-{s}" for s in suffixes]
    output = stack_tags.get(TAG_DEPLOYMENT_ID) if output_id == "from-tags" else output_id
    for stack in names:
        cfn.create_stack(
            StackName=stack,
            TemplateBody=template(output),
            Tags=_aws_tags(stack_tags),
            EnableTerminationProtection=protected,
        )
    return names


def live_stacks(region: str = REGION) -> set[str]:
    cfn = boto3.client("cloudformation", region_name=region)
    return {s["StackName"] for s in cfn.describe_stacks()["Stacks"] if s["StackStatus"] != "DELETE_COMPLETE"}


def run_instance(instance_tags: dict[str, str]) -> str:
    ec2 = boto3.client("ec2", region_name=REGION)
    spec = [{"ResourceType": "instance", "Tags": _aws_tags(instance_tags)}]
    return str(
        ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, TagSpecifications=spec)["Instances"][0][
            "InstanceId"
        ]
    )


def instance_state(instance_id: str) -> str:
    ec2 = boto3.client("ec2", region_name=REGION)
    return str(ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["State"]["Name"])


def seed_leftovers(name: str) -> dict[str, str]:
    """What controllers and Karpenter leave behind, tagged as this ephemeral cluster's."""
    ours = tags(name)
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    a = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    b = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.2.0/24", AvailabilityZone="us-east-1b")["Subnet"]["SubnetId"]
    elb = boto3.client("elbv2", region_name=REGION)
    lb = elb.create_load_balancer(Name=f"{name}-lb", Subnets=[a, b], Tags=_aws_tags(ours))["LoadBalancers"][0][
        "LoadBalancerArn"
    ]
    tg = elb.create_target_group(Name=f"{name}-tg", Protocol="HTTP", Port=80, VpcId=vpc, Tags=_aws_tags(ours))[
        "TargetGroups"
    ][0]["TargetGroupArn"]
    vol_spec = [{"ResourceType": "volume", "Tags": _aws_tags(ours)}]
    vol = ec2.create_volume(AvailabilityZone="us-east-1a", Size=10, TagSpecifications=vol_spec)["VolumeId"]
    eni_spec = [{"ResourceType": "network-interface", "Tags": _aws_tags(ours)}]
    eni = ec2.create_network_interface(SubnetId=a, TagSpecifications=eni_spec)["NetworkInterface"]["NetworkInterfaceId"]
    efs = boto3.client("efs", region_name=REGION)
    efs_id = efs.create_file_system(CreationToken=f"{name}-efs", Tags=_aws_tags(ours))["FileSystemId"]
    efs.create_mount_target(FileSystemId=efs_id, SubnetId=a)
    fsx = boto3.client("fsx", region_name=REGION)
    fsx_id = fsx.create_file_system(FileSystemType="LUSTRE", StorageCapacity=1200, SubnetIds=[a], Tags=_aws_tags(ours))[
        "FileSystem"
    ]["FileSystemId"]
    logs = boto3.client("logs", region_name=REGION)
    logs.create_log_group(logGroupName=f"/eks-llm-stack/{name}/app", tags=ours)
    node = run_instance({**ours, "karpenter.sh/nodepool": "gpu", f"kubernetes.io/cluster/{name}-cluster": "owned"})
    return {"lb": lb, "tg": tg, "volume": vol, "eni": eni, "efs": efs_id, "fsx": fsx_id, "node": node}


def gone(kind: str, ident: str) -> bool:
    if kind == "lb":
        return not boto3.client("elbv2", region_name=REGION).describe_load_balancers()["LoadBalancers"]
    if kind == "tg":
        return not boto3.client("elbv2", region_name=REGION).describe_target_groups()["TargetGroups"]
    if kind == "volume":
        return not boto3.client("ec2", region_name=REGION).describe_volumes(
            Filters=[{"Name": "volume-id", "Values": [ident]}]
        )["Volumes"]
    if kind == "eni":
        enis = boto3.client("ec2", region_name=REGION).describe_network_interfaces(
            Filters=[{"Name": "network-interface-id", "Values": [ident]}]
        )
        return not enis["NetworkInterfaces"]
    if kind == "efs":
        return not boto3.client("efs", region_name=REGION).describe_file_systems()["FileSystems"]
    if kind == "fsx":
        return all(
            f.get("Lifecycle") == "DELETING"
            for f in boto3.client("fsx", region_name=REGION).describe_file_systems()["FileSystems"]
        )
    if kind == "node":
        return instance_state(ident) in ("shutting-down", "terminated")
    raise AssertionError(kind)


# --- up -------------------------------------------------------------------------------------


def test_up_refuses_a_non_ephemeral_profile(aws: Aws) -> None:
    with pytest.raises(
        ConfigError,
        match=r"ephemeral: the profile is not ephemeral.*\n.*fix: use an ephemeral profile \(-p ci-ephemeral\)",
    ):
        eph.up(aws, validate_profile({"name": "prod"}), runner=FakeCdk(aws), progress=quiet)


def test_up_refuses_a_profile_that_keeps_stateful_resources(aws: Aws) -> None:
    # Real profile fields (the old check read five fields the schema forbids, so it never fired).
    profile = ephemeral_profile(storage={"efs": {"backup": True}})
    with pytest.raises(
        ConfigError,
        match=r"storage.efs.backup: stateful resources would be kept: AWS Backup recovery points.*\n"
        r".*fix: set 'storage.efs.backup: false'",
    ):
        eph.up(aws, profile, runner=FakeCdk(aws), progress=quiet)


def test_up_refuses_a_new_model_bucket_in_an_ephemeral_profile(aws: Aws) -> None:
    profile = ephemeral_profile(storage={"fsx": {"data_repository": {"new_bucket": True}}})
    with pytest.raises(ConfigError, match=r"storage.fsx.data_repository.new_bucket: stateful resources would be kept"):
        eph.up(aws, profile, runner=FakeCdk(aws), progress=quiet)


class FakeCdk:
    """Stands in for the CDK CLI and kubectl: 'deploy' creates the tagged stacks and the cluster moto-side."""

    def __init__(self, aws: Aws, deploy_rc: int = 0, ready_after: int = 1) -> None:
        self.aws, self.deploy_rc, self.ready_after = aws, deploy_rc, ready_after
        self.calls: list[list[str]] = []
        self.deployed: list[dict[str, str]] = []
        self.kubectl_calls = 0

    def run(self, argv: Sequence[str], *, capture: bool = False, timeout: float | None = None) -> CommandResult:
        argv = list(argv)
        self.calls.append(argv)
        if "deploy" in argv:
            context = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "-c")
            name = context["name"]
            stack_tags = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "--tags")
            # What the app does with this context: the deployment id as a tag and as a stack output.
            assert stack_tags[TAG_DEPLOYMENT_ID] == context["deployment_id"]
            assert stack_tags[TAG_EXPIRES] == context["expires_at"]
            self.deployed.append(context)
            if self.deploy_rc == 0:
                seed_stacks(name, stack_tags, output_id=context["deployment_id"])
                boto3.client("eks", region_name=REGION).create_cluster(
                    name=f"{name}-cluster",
                    roleArn="arn:aws:iam::123456789012:role/eks",
                    resourcesVpcConfig={"subnetIds": []},
                )
            return CommandResult(self.deploy_rc)
        self.kubectl_calls += 1
        ready = 1 if self.kubectl_calls > self.ready_after else 0
        return CommandResult(0, json.dumps({"items": [{"status": {"replicas": 1, "readyReplicas": ready}}]}))


def ephemeral_profile(**overrides: Any) -> Profile:
    data: dict[str, Any] = {
        "name": "ci-test",
        "prefix": "llm-ci-test",
        "ephemeral": True,
        "ttl": "2h",
        "tags": {"cost-center": "ci"},
        "models": [{"name": "qwen", "engine": "simulator"}],
    }
    return validate_profile({**data, **overrides})


def test_up_deploys_tagged_stacks_waits_and_writes_a_kubeconfig(aws: Aws, tmp_path: Path) -> None:
    cdk, messages = FakeCdk(aws), list[str]()
    result = eph.up(
        aws,
        ephemeral_profile(),
        runner=cdk,
        name="ci-pr-7",
        workdir=tmp_path,
        now=NOW,
        timeouts=FAST,
        progress=messages.append,
    )
    deploy = cdk.calls[0]
    assert deploy[1:3] == ["deploy", "--all"] and "profile=ci-test" in deploy and "name=ci-pr-7" in deploy
    assert f"{TAG_EXPIRES}=2026-11-21T14:00:00Z" in deploy and f"{TAG_EPHEMERAL}=true" in deploy
    assert "expires_at=2026-11-21T14:00:00Z" in deploy and "cost-center=ci" in deploy
    assert result.deployment_id == cdk.deployed[0]["deployment_id"] and len(result.deployment_id) == 16
    record = json.loads((tmp_path / "ci-pr-7-deployment.json").read_text())
    assert record == {"name": "ci-pr-7", "deployment_id": result.deployment_id, "expires_at": "2026-11-21T14:00:00Z"}
    config = yaml.safe_load(result.kubeconfig.read_text())
    assert config["clusters"][0]["cluster"]["server"] == result.endpoint
    assert config["users"][0]["user"]["exec"]["args"][:4] == ["eks", "get-token", "--cluster-name", "ci-pr-7-cluster"]
    assert any("model 'qwen' to be ready: 0/1 replicas ready" in m for m in messages)
    assert any("model 'qwen' to be ready: 1/1 replicas ready" in m for m in messages)


def test_up_refuses_a_name_in_use(aws: Aws, tmp_path: Path) -> None:
    seed_stacks("ci-pr-7", tags("ci-pr-7"))
    with pytest.raises(EphemeralError, match=r"stacks of 'ci-pr-7' exist already: CiPr-7-Network \(CREATE_COMPLETE\)"):
        eph.up(aws, ephemeral_profile(), runner=FakeCdk(aws), name="ci-pr-7", workdir=tmp_path, now=NOW, progress=quiet)


def test_up_rejects_a_bad_name_with_the_fix(aws: Aws, tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"--name: is not a usable cluster name.*\(got 'CI_7'\)\n.*fix: use 1-20 lowercase"
    ):
        eph.up(aws, ephemeral_profile(), runner=FakeCdk(aws), name="CI_7", workdir=tmp_path, progress=quiet)


def test_up_reports_a_failed_deploy_and_how_to_clean_up(aws: Aws, tmp_path: Path) -> None:
    with pytest.raises(EphemeralError, match=r"cdk deploy of 'ci-x' failed \(exit 1\).*ephemeral down ci-x"):
        eph.up(
            aws, ephemeral_profile(), runner=FakeCdk(aws, deploy_rc=1), name="ci-x", workdir=tmp_path, progress=quiet
        )


def test_up_wait_times_out_naming_what_it_waited_for(aws: Aws, tmp_path: Path) -> None:
    never_ready = FakeCdk(aws, ready_after=10**6)
    timeouts = Timeouts(deploy=60, cluster=60, model=0, stack_delete=60, interval=0)
    with pytest.raises(
        WaitTimeout,
        match=r"waiting for model 'qwen' to be ready after \d+s \(timeout 0s\); last state: 0/1 replicas ready",
    ):
        eph.up(
            aws,
            ephemeral_profile(),
            runner=never_ready,
            name="ci-y",
            workdir=tmp_path,
            timeouts=timeouts,
            progress=quiet,
        )


def test_new_names_are_valid_and_distinct() -> None:
    names = {eph.new_name(NOW) for _ in range(20)}
    assert len(names) > 1 and all(eph.check_name(n) == n for n in names)


# --- down -----------------------------------------------------------------------------------


def test_down_deletes_stacks_in_reverse_dependency_order(aws: Aws) -> None:
    seed_stacks("ci-a", tags("ci-a"))
    report = eph.down(aws, "ci-a", timeouts=FAST, progress=quiet)
    assert report.deleted_stacks == ["CiA-Serving", "CiA-Platform", "CiA-Data", "CiA-Network"]
    assert live_stacks() == set() and report.clean


def test_down_deletes_every_tagged_leftover(aws: Aws) -> None:
    seed_stacks("ci-a", tags("ci-a"))
    left = seed_leftovers("ci-a")
    report = eph.down(aws, "ci-a", timeouts=FAST, progress=quiet)
    assert {kind for kind, ident in left.items() if not gone(kind, ident)} == set()
    kinds = {d.kind for d in report.deleted}
    assert kinds == {
        "EC2 instance",
        "load balancer",
        "target group",
        "FSx file system",
        "EFS file system",
        "EBS volume",
        "network interface",
        "log group",
    }
    assert report.clean


def test_down_spares_untagged_look_alikes_and_reports_cluster_tagged_ones(aws: Aws) -> None:
    seed_stacks("ci-a", tags("ci-a"))
    look_alike = seed_stacks("ci-a", tags("ci-a", ephemeral=None), suffixes=("Extra",))
    not_ephemeral = seed_stacks("ci-a", tags("ci-a", ephemeral="false"), suffixes=("Other",))
    foreign_node = run_instance({"kubernetes.io/cluster/ci-a-cluster": "owned", "karpenter.sh/nodepool": "gpu"})
    report = eph.down(aws, "ci-a", timeouts=FAST, progress=quiet)
    assert live_stacks() == {*look_alike, *not_ephemeral}
    assert instance_state(foreign_node) == "running"
    assert [str(r) for r in report.reported] == [
        f"EC2 instance {foreign_node} (tagged for cluster ci-a-cluster but not as deployment {DEP} of 'ci-a'; "
        "not deleted)"
    ]
    assert not report.clean


def test_down_twice_is_a_clean_no_op(aws: Aws) -> None:
    seed_stacks("ci-a", tags("ci-a"))
    seed_leftovers("ci-a")
    eph.down(aws, "ci-a", timeouts=FAST, progress=quiet)
    again = eph.down(aws, "ci-a", timeouts=FAST, progress=quiet)
    assert (again.deleted_stacks, again.deleted, again.reported, again.clean) == ([], [], [], True)


def test_down_resumes_after_a_half_finished_delete(aws: Aws) -> None:
    stacks = seed_stacks("ci-a", tags("ci-a"))
    cfn = boto3.client("cloudformation", region_name=REGION)
    for half in stacks[2:]:  # Platform and Serving went in an earlier, interrupted run
        cfn.delete_stack(StackName=half)
    report = eph.down(aws, "ci-a", timeouts=FAST, progress=quiet)
    assert report.deleted_stacks == ["CiA-Data", "CiA-Network"] and live_stacks() == set()


def test_down_waits_on_a_stack_already_deleting(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    seed_stacks("ci-a", tags("ci-a"), suffixes=("Network",))
    [stack] = eph.find_cluster(aws, "ci-a").stacks  # type: ignore[union-attr]
    deleting = eph.StackRef(stack.name, stack.stack_id, "DELETE_IN_PROGRESS", stack.tags, stack.created)
    calls = iter([("DELETE_IN_PROGRESS", ""), ("DELETE_IN_PROGRESS", ""), ("DELETE_COMPLETE", "")])
    deletes: list[str] = []
    monkeypatch.setattr(down_module, "_stack_status", lambda cfn, stack_id: next(calls))
    monkeypatch.setattr(aws.client("cloudformation"), "delete_stack", lambda **kw: deletes.append(kw["StackName"]))
    ok, status = down_module._delete_stack(aws, deleting, FAST, quiet, None)
    # Already deleting: wait on it, never issue a second DeleteStack.
    assert (ok, status, deletes) == (True, "DELETE_COMPLETE", [])


# --- reap and list --------------------------------------------------------------------------


def test_reap_removes_only_expired_ephemeral_clusters(aws: Aws) -> None:
    seed_stacks("old", tags("old", expires=NOW - timedelta(minutes=5)))
    seed_stacks("fresh", tags("fresh", expires=NOW + timedelta(hours=1)))
    look_alike = seed_stacks("old", tags("old", expires=NOW - timedelta(days=1), ephemeral=None), suffixes=("Keep",))
    no_expiry = seed_stacks("odd", tags("odd", expires=None))
    prod_node = run_instance({"Name": "old-cluster-node", "kubernetes.io/cluster/prod": "owned"})
    report = eph.reap(aws, now=NOW, dry_run=False, timeouts=FAST, progress=quiet)
    assert (report.expired, report.kept, report.untouched) == (["old"], ["fresh"], ["odd"])
    assert live_stacks() == {*seed_names("fresh"), *look_alike, *no_expiry}
    assert instance_state(prod_node) == "running"


def seed_names(name: str) -> list[str]:
    prefix = "".join(p.capitalize() for p in name.split("-"))
    return [f"{prefix}-{s}" for s in eph.STACK_ORDER]


def test_reap_dry_run_deletes_nothing(aws: Aws) -> None:
    names = seed_stacks("old", tags("old", expires=NOW - timedelta(minutes=5)))
    report = eph.reap(aws, now=NOW, dry_run=True, timeouts=FAST, progress=quiet)
    assert report.expired == ["old"] and report.downs == [] and live_stacks() == set(names)


def test_reap_waits_for_the_latest_expiry_of_a_cluster(aws: Aws) -> None:
    seed_stacks("mixed", tags("mixed", expires=NOW - timedelta(hours=1)), suffixes=("Network",))
    seed_stacks("mixed", tags("mixed", expires=NOW + timedelta(hours=1)), suffixes=("Serving",))
    assert eph.reap(aws, now=NOW, dry_run=False, timeouts=FAST, progress=quiet).kept == ["mixed"]


def test_list_shows_name_age_expiry_and_state(aws: Aws) -> None:
    seed_stacks("ci-a", tags("ci-a", expires=NOW + timedelta(hours=3)))
    created = eph.find_cluster(aws, "ci-a").created_at  # type: ignore[union-attr]
    rows = eph.list_rows(eph.find_clusters(aws), created + timedelta(hours=1, minutes=5))
    [(name, age, expires, state)] = rows
    assert (name, age, state) == ("ci-a", "1h05m", "ready (4 stacks)")
    assert expires.startswith("2026-11-21T15:00:00Z (")


# --- smoke ----------------------------------------------------------------------------------


class FakeHarness:
    def __init__(self, code: int) -> None:
        self.code = code
        self.calls: list[dict[str, Any]] = []

    def __call__(self, *, kubeconfig: Path, model: str, output_dir: Path) -> int:
        self.calls.append({"kubeconfig": kubeconfig, "model": model, "existed": kubeconfig.is_file()})
        return self.code


def _cluster(name: str) -> None:
    seed_stacks(name, tags(name))
    boto3.client("eks", region_name=REGION).create_cluster(
        name=f"{name}-cluster", roleArn="arn:aws:iam::123456789012:role/eks", resourcesVpcConfig={"subnetIds": []}
    )


def test_smoke_runs_the_baseline_against_the_model(aws: Aws, tmp_path: Path) -> None:
    _cluster("ci-s")
    harness = FakeHarness(0)
    eph.smoke(aws, "ci-s", model="qwen", harness=harness, output_dir=tmp_path, transport_check=lambda *_: None)
    call = harness.calls[0]
    assert call["model"] == "qwen" and call["existed"]
    # The report directory is uploaded as an artifact: no kubeconfig in it, and none left behind.
    assert not call["kubeconfig"].is_relative_to(tmp_path) and not call["kubeconfig"].exists()
    assert not list(tmp_path.rglob("kubeconfig*"))


def test_smoke_refuses_a_kubeconfig_inside_the_report(aws: Aws, tmp_path: Path) -> None:
    _cluster("ci-s")
    with pytest.raises(EphemeralError, match="is inside the report directory"):
        eph.smoke(
            aws,
            "ci-s",
            model="qwen",
            harness=FakeHarness(0),
            output_dir=tmp_path,
            kubeconfig=tmp_path / "k" / "cfg",
            transport_check=lambda *_: None,
        )


def test_smoke_fails_when_the_harness_reports_errors(aws: Aws, tmp_path: Path) -> None:
    _cluster("ci-s")
    with pytest.raises(
        EphemeralError, match=r"smoke test of 'ci-s' failed: the baseline scenario against 'qwen' exited 3"
    ):
        eph.smoke(aws, "ci-s", model="qwen", harness=FakeHarness(3), output_dir=tmp_path)


def test_smoke_refuses_an_unknown_cluster(aws: Aws, tmp_path: Path) -> None:
    with pytest.raises(EphemeralError, match="no ephemeral cluster named 'nope'"):
        eph.smoke(aws, "nope", model="qwen", harness=FakeHarness(0), output_dir=tmp_path)


def test_the_shipped_ci_ephemeral_profile_is_accepted_for_ephemeral_use() -> None:
    from eks_llm_stack.config import load_profile
    from eks_llm_stack.ops.requirements import refuse_for_ephemeral

    refuse_for_ephemeral(load_profile("ci-ephemeral"))


def test_smoke_command_line_is_accepted_by_the_bench_command(tmp_path: Path) -> None:
    """The smoke test shells out to `eks-llm-stack bench run`; its flags must be the harness's own."""
    from eks_llm_stack.cli import build_parser

    argv = eph.bench_argv(url="http://127.0.0.1:18080", model="qwen", output_dir=tmp_path)
    args = build_parser().parse_args(argv[argv.index("bench") :])
    assert (args.url, args.model, args.scenario, args.out) == ("http://127.0.0.1:18080", "qwen", "baseline", tmp_path)


def test_smoke_verdict_fails_on_request_errors(tmp_path: Path) -> None:
    import json

    (tmp_path / "summary.json").write_text(json.dumps({"levels": [{"completed": 99, "errors": 1}]}))
    assert eph.smoke_verdict(0, tmp_path) == 3
    (tmp_path / "summary.json").write_text(json.dumps({"levels": [{"completed": 100, "errors": 0}]}))
    assert eph.smoke_verdict(0, tmp_path) == 0
    assert eph.smoke_verdict(2, tmp_path) == 2


def test_smoke_fails_when_nccl_runs_without_the_ofi_plugin(aws: Aws, tmp_path: Path) -> None:
    from eks_llm_stack.ops.ephemeral.smoke import nccl_transport_problem

    _cluster("ci-s")
    tcp_log = "NCCL INFO NET/Socket : Using [0]eth0:10.0.1.5<0>\nNCCL INFO Using network Socket\n"
    with pytest.raises(EphemeralError, match=r"did not load the aws-ofi-nccl network plugin.*TCP"):
        eph.smoke(
            aws,
            "ci-s",
            model="big",
            harness=FakeHarness(0),
            output_dir=tmp_path,
            transport_check=lambda _kubeconfig, _model: nccl_transport_problem(tcp_log),
        )
