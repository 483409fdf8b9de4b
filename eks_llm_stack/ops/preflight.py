"""``eks-llm-stack preflight``: everything a deploy needs that can be checked before it starts.

A failed quota or a missing secret otherwise shows up 20 minutes into ``cdk deploy``, as a
rolled-back stack. Each check here reads the account with describe/get calls only (nothing is
created or changed) and yields one or more :class:`CheckResult` rows: the check, its result,
what was found and, for a failure, how to fix it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .aws import Aws, aws_failure, error_code, paginate
from .requirements import PoolRequirement, Requirements

#: The stack ``cdk bootstrap`` creates (default qualifier).
BOOTSTRAP_STACK = "CDKToolkit"
#: The oldest bootstrap template that aws-cdk-lib v2's default synthesizer accepts.
MIN_BOOTSTRAP_VERSION = 6
#: Stack states in which the bootstrap resources exist and work.
_USABLE_STACK_STATES = frozenset(
    {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE", "IMPORT_ROLLBACK_COMPLETE"}
)

#: EC2 vCPU quotas by (capacity type, quota group). G and VT share one quota.
QUOTA_CODES: dict[tuple[str, str], tuple[str, str]] = {
    ("on-demand", "G and VT"): ("L-DB2E81BA", "Running On-Demand G and VT instances"),
    ("on-demand", "P"): ("L-417A185B", "Running On-Demand P instances"),
    ("spot", "G and VT"): ("L-3819A6DF", "All G and VT Spot Instance Requests"),
    ("spot", "P"): ("L-7212CCBC", "All P Spot Instance Requests"),
}


class Status(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "FAIL"
    SKIP = "skip"


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    """One row of the preflight table."""

    check: str
    status: Status
    detail: str
    fix: str = ""
    """What to do about a failure or warning. Default: nothing (the check passed)."""


@dataclass(frozen=True)
class PreflightReport:
    results: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        return not any(r.status is Status.FAIL for r in self.results)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def by_check(self, name: str) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if r.check == name)


def _passed(check: str, detail: str) -> CheckResult:
    return CheckResult(check=check, status=Status.PASS, detail=detail)


def _failed(check: str, detail: str, fix: str) -> CheckResult:
    return CheckResult(check=check, status=Status.FAIL, detail=detail, fix=fix)


# --- credentials and bootstrap -------------------------------------------------------------


def check_credentials(aws: Aws, req: Requirements) -> list[CheckResult]:
    name = "credentials"
    try:
        identity = aws.client("sts").get_caller_identity()
    except Exception as exc:  # NoCredentialsError, expired SSO token, AccessDenied, ...
        what, fix = aws_failure(exc) or (
            str(exc),
            "set AWS_PROFILE (and run 'aws sso login') or export AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
        )
        return [_failed(name, f"cannot call sts:GetCallerIdentity: {what}", fix)]
    account, arn = identity["Account"], identity.get("Arn", "?")
    region = aws.region_name
    results = []
    if req.account and account != req.account:
        results.append(
            _failed(
                name,
                f"credentials are for account {account} ({arn}) but profile '{req.profile_name}' targets {req.account}",
                f"switch AWS_PROFILE to a role in {req.account}, or correct 'account' in the profile",
            )
        )
    if req.region and region != req.region:
        results.append(
            _failed(
                name,
                f"the environment selects region {region} but profile '{req.profile_name}' targets {req.region}",
                f"export AWS_REGION={req.region}, or correct 'region' in the profile",
            )
        )
    return results or [_passed(name, f"account {account}, region {region}, as {arn}")]


@dataclass(frozen=True, kw_only=True)
class Bootstrap:
    """The CDK bootstrap a deploy goes through: ``cdk bootstrap --qualifier Q --toolkit-stack-name NAME``.

    ``qualifier`` — the bootstrap qualifier the app synthesizes with (default None: the toolkit
    stack's own, not checked). ``stack_name`` — the toolkit stack (default ``CDKToolkit``, or
    ``CDKToolkit-<qualifier>`` with a qualifier, as ``ephemeral up`` deploys). ``permissions_boundary``
    — the IAM policy name the bootstrap must have been given with ``--custom-permissions-boundary``
    (default None: not checked).
    """

    qualifier: str | None = None
    stack_name: str | None = None
    permissions_boundary: str | None = None

    @property
    def toolkit_stack(self) -> str:
        if self.stack_name:
            return self.stack_name
        return f"{BOOTSTRAP_STACK}-{self.qualifier}" if self.qualifier else BOOTSTRAP_STACK

    def command(self, account: str, region: str) -> str:
        """The ``cdk bootstrap`` command that creates this bootstrap."""
        cmd = f"cdk bootstrap aws://{account}/{region}"
        if self.qualifier:
            cmd += f" --qualifier {self.qualifier}"
        if self.toolkit_stack != BOOTSTRAP_STACK:
            cmd += f" --toolkit-stack-name {self.toolkit_stack}"
        if self.permissions_boundary:
            cmd += f" --custom-permissions-boundary {self.permissions_boundary}"
        return cmd


#: The default bootstrap (qualifier hnb659fds, stack CDKToolkit).
DEFAULT_BOOTSTRAP = Bootstrap()


def check_bootstrap(aws: Aws, req: Requirements, bootstrap: Bootstrap = DEFAULT_BOOTSTRAP) -> list[CheckResult]:
    name = "cdk bootstrap"
    stack_name = bootstrap.toolkit_stack
    fix = f"run '{bootstrap.command(req.account or '<account>', aws.region_name)}'"
    try:
        stacks = aws.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    except Exception as exc:
        if "does not exist" in str(exc):
            return [_failed(name, f"stack {stack_name} not found in {aws.region_name}", fix)]
        raise
    stack = stacks[0]
    status = stack["StackStatus"]
    if status not in _USABLE_STACK_STATES:
        return [_failed(name, f"stack {stack_name} is {status}", f"repair or delete it, then {fix}")]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", ())}
    params = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", ())}
    version = outputs.get("BootstrapVersion")
    results = []
    if version is None or not str(version).isdigit() or int(version) < MIN_BOOTSTRAP_VERSION:
        results.append(
            _failed(
                name,
                f"{stack_name}: bootstrap version {version or 'unknown'} is older than {MIN_BOOTSTRAP_VERSION}",
                f"re-run the bootstrap with the current CDK CLI: {fix}",
            )
        )
    # The bootstrap template's own parameters say which qualifier and boundary it was created with.
    found_qualifier = params.get("Qualifier")
    if bootstrap.qualifier and found_qualifier != bootstrap.qualifier:
        results.append(
            _failed(
                name,
                f"{stack_name} was bootstrapped with qualifier {found_qualifier or '(none)'}, "
                f"not {bootstrap.qualifier}: the deploy would look for roles it does not have",
                f"bootstrap again with the qualifier: {fix}",
            )
        )
    found_boundary = params.get("InputPermissionsBoundary", "")
    if bootstrap.permissions_boundary and found_boundary != bootstrap.permissions_boundary:
        results.append(
            _failed(
                name,
                f"{stack_name}'s execution role has permissions boundary {found_boundary or '(none)'}, "
                f"not {bootstrap.permissions_boundary}",
                f"bootstrap again with the boundary: {fix}",
            )
        )
    if results:
        return results
    extra = "".join(
        f", {label} {value}" for label, value in (("qualifier", found_qualifier), ("boundary", found_boundary)) if value
    )
    return [_passed(name, f"{stack_name} {status}, version {version}{extra}")]


# --- EC2 capacity ---------------------------------------------------------------------------


def quota_group(instance_type: str) -> str | None:
    """``g6e.xlarge`` -> ``'G and VT'``, ``p5.48xlarge`` -> ``'P'``, others -> ``None``."""
    family = instance_type.split(".", 1)[0].lower()
    if family.startswith("vt") or (family.startswith("g") and family[1:2].isdigit()):
        return "G and VT"
    if family.startswith("p") and family[1:2].isdigit():
        return "P"
    return None


@dataclass(frozen=True)
class InstanceShape:
    vcpus: int
    gpus: int


def instance_shapes(aws: Aws, instance_types: Iterable[str]) -> dict[str, InstanceShape]:
    """vCPUs and GPUs per instance type: the library's catalog first, EC2 for the rest."""
    shapes: dict[str, InstanceShape] = {}
    wanted = sorted(set(instance_types))
    from ..catalog import get_instance

    for itype in wanted:
        try:
            info = get_instance(itype)
        except Exception:  # unknown to the catalog: EC2 answers below
            continue
        shapes[itype] = InstanceShape(vcpus=int(info.vcpus), gpus=int(getattr(info, "gpu_count", 0) or 0))
    missing = [t for t in wanted if t not in shapes]
    if missing:
        ec2 = aws.client("ec2")
        try:
            found = paginate(ec2, "describe_instance_types", "InstanceTypes", InstanceTypes=missing)
        except Exception as exc:
            if error_code(exc) != "InvalidInstanceType":
                raise
            found = []
            for itype in missing:  # find which one is unknown; the others still count
                try:
                    found.extend(ec2.describe_instance_types(InstanceTypes=[itype])["InstanceTypes"])
                except Exception as inner:
                    if error_code(inner) != "InvalidInstanceType":
                        raise
        for it in found:
            gpus = sum(g.get("Count", 0) for g in it.get("GpuInfo", {}).get("Gpus", ()))
            shapes[it["InstanceType"]] = InstanceShape(vcpus=int(it["VCpuInfo"]["DefaultVCpus"]), gpus=gpus)
    return shapes


def pool_max_vcpus(pool: PoolRequirement, shapes: dict[str, InstanceShape]) -> int | None:
    """The most vCPUs the pool can hold at once, in its worst case (the instance type with most vCPUs per GPU)."""
    if pool.max_vcpus is not None:
        return pool.max_vcpus
    if pool.max_gpus is None:
        return None
    worst = 0
    for itype in pool.instance_types:
        shape = shapes.get(itype)
        if shape is None or shape.gpus == 0:
            continue
        worst = max(worst, math.ceil(pool.max_gpus / shape.gpus) * shape.vcpus)
    return worst or None


def check_quotas(aws: Aws, req: Requirements) -> list[CheckResult]:
    name = "EC2 vCPU quota"
    if not req.pools:
        return [_passed(name, "no GPU pools")]
    shapes = instance_shapes(aws, (t for p in req.pools for t in p.instance_types))
    results: list[CheckResult] = []
    needed: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for pool in req.pools:
        vcpus = pool_max_vcpus(pool, shapes)
        if vcpus is None:
            results.append(
                _failed(
                    name,
                    f"pool '{pool.name}' has no upper bound (neither max GPUs nor max vCPUs), so no quota can be known to cover it",
                    f"give pool '{pool.name}' a GPU limit (limits.gpus / max_gpus)",
                )
            )
            continue
        groups = {quota_group(t) for t in pool.instance_types}
        for itype in sorted(t for t in pool.instance_types if quota_group(t) is None):
            results.append(
                CheckResult(
                    check=name,
                    status=Status.WARN,
                    detail=f"pool '{pool.name}': {itype} is outside the G/VT and P quotas, not checked",
                    fix="check its family's vCPU quota in the Service Quotas console",
                )
            )
        for capacity in pool.capacity_types:
            if capacity not in ("on-demand", "spot"):
                continue
            # Karpenter may fill the whole pool from any of its families and capacity types,
            # so each quota it can draw on must cover the whole pool on its own.
            for group in sorted(g for g in groups if g is not None):
                needed.setdefault((capacity, group), []).append((pool.name, vcpus))
    quotas = aws.client("service-quotas")
    for (capacity, group), pools in sorted(needed.items()):
        code, quota_name = QUOTA_CODES[(capacity, group)]
        total = sum(v for _, v in pools)
        who = ", ".join(f"{p} {v}" for p, v in pools)
        try:
            value = quotas.get_service_quota(ServiceCode="ec2", QuotaCode=code)["Quota"]["Value"]
        except Exception as exc:
            if error_code(exc) != "NoSuchResourceException":
                raise
            # Accounts that never asked for an increase only have the AWS default.
            value = quotas.get_aws_default_service_quota(ServiceCode="ec2", QuotaCode=code)["Quota"]["Value"]
        label = f"{quota_name} ({code})"
        if value >= total:
            results.append(_passed(name, f"{label}: {value:.0f} vCPUs >= {total} needed ({who})"))
        else:
            results.append(
                _failed(
                    name,
                    f"{label}: {value:.0f} vCPUs < {total} needed ({who})",
                    f"request an increase to {total}: aws service-quotas request-service-quota-increase "
                    f"--service-code ec2 --quota-code {code} --desired-value {total}; or lower the pools' limits",
                )
            )
    return results


def _region_zones(aws: Aws) -> tuple[str, ...]:
    zones = aws.client("ec2").describe_availability_zones(
        Filters=[{"Name": "state", "Values": ["available"]}, {"Name": "zone-type", "Values": ["availability-zone"]}]
    )["AvailabilityZones"]
    return tuple(sorted(z["ZoneName"] for z in zones))


def check_offerings(aws: Aws, req: Requirements) -> list[CheckResult]:
    name = "instance offerings"
    if not req.pools:
        return [_passed(name, "no GPU pools")]
    region_zones: tuple[str, ...] | None = None
    results: list[CheckResult] = []
    for pool in req.pools:
        zones = pool.zones or req.network_zones
        if not zones:
            region_zones = region_zones or _region_zones(aws)
            zones = region_zones
        if pool.placement_group and len(zones) != 1:
            results.append(
                _failed(
                    name,
                    f"pool '{pool.name}' uses a cluster placement group, which lives in one zone, but may launch in {len(zones)}: {', '.join(zones)}",
                    f"pin pool '{pool.name}' to the one zone its instance types are offered in (availability_zones: [<zone>])",
                )
            )
            continue
        offered: dict[str, set[str]] = {t: set() for t in pool.instance_types}
        for item in paginate(
            aws.client("ec2"),
            "describe_instance_type_offerings",
            "InstanceTypeOfferings",
            LocationType="availability-zone",
            Filters=[
                {"Name": "instance-type", "Values": list(pool.instance_types)},
                {"Name": "location", "Values": list(zones)},
            ],
        ):
            offered.setdefault(item["InstanceType"], set()).add(item["Location"])
        nowhere = sorted(t for t, z in offered.items() if not z)
        where = "; ".join(f"{t} in {', '.join(sorted(z)) or 'none'}" for t, z in sorted(offered.items()))
        if nowhere:
            results.append(
                _failed(
                    name,
                    f"pool '{pool.name}': {', '.join(nowhere)} not offered in {', '.join(zones)} ({where})",
                    f"pick zones that offer them (aws ec2 describe-instance-type-offerings --location-type availability-zone "
                    f"--filters Name=instance-type,Values={nowhere[0]}) or other instance types",
                )
            )
        else:
            results.append(_passed(name, f"pool '{pool.name}': {where}"))
    return results


def check_reservations(aws: Aws, req: Requirements) -> list[CheckResult]:
    name = "capacity reservations"
    reserved = [p for p in req.pools if p.reserved]
    if not reserved:
        return [_passed(name, "no pool asks for reserved capacity")]
    ec2 = aws.client("ec2")
    results: list[CheckResult] = []
    for pool in reserved:
        kwargs: dict[str, Any] = {}
        if pool.capacity_reservation_ids:
            kwargs["CapacityReservationIds"] = list(pool.capacity_reservation_ids)
        else:
            kwargs["Filters"] = [{"Name": "instance-type", "Values": list(pool.instance_types)}]
        try:
            found = paginate(ec2, "describe_capacity_reservations", "CapacityReservations", **kwargs)
        except Exception as exc:
            if error_code(exc) not in (
                "InvalidCapacityReservationId.NotFound",
                "InvalidCapacityReservationId.Malformed",
            ):
                raise
            results.append(
                _failed(
                    name,
                    f"pool '{pool.name}': {exc}",
                    "check the capacity_reservation_ids against 'aws ec2 describe-capacity-reservations'",
                )
            )
            continue
        zones = set(pool.zones or req.network_zones)
        usable: list[str] = []
        other: list[str] = []
        for cr in found:
            kind = "Capacity Block" if cr.get("ReservationType") == "capacity-block" else "reservation"
            label = f"{kind} {cr['CapacityReservationId']} ({cr['InstanceType']}, {cr.get('AvailabilityZone', '?')}, {cr['State']})"
            matches = cr["InstanceType"] in pool.instance_types and (not zones or cr.get("AvailabilityZone") in zones)
            (usable if matches and cr["State"] == "active" else other).append(label)
        missing_ids = sorted(set(pool.capacity_reservation_ids) - {cr["CapacityReservationId"] for cr in found})
        if usable and not missing_ids and (not pool.capacity_reservation_ids or not other):
            results.append(_passed(name, f"pool '{pool.name}': {'; '.join(usable)}"))
            continue
        seen = "; ".join(other) or "none"
        problem = (
            f"pool '{pool.name}' asks for reserved capacity but no active, matching reservation exists (found: {seen})"
        )
        if pool.capacity_reservation_ids:
            problem = f"pool '{pool.name}': reservations not active or not matching its instance types/zones (found: {seen}; missing: {', '.join(missing_ids) or 'none'})"
        results.append(
            _failed(
                name,
                problem,
                "buy a Capacity Block or create an on-demand capacity reservation for the pool's instance types in its zones "
                "(or wait for a scheduled block to start), or drop 'reserved' from the pool",
            )
        )
    return results


# --- cluster, secrets, network --------------------------------------------------------------


def check_kubernetes_version(aws: Aws, req: Requirements) -> list[CheckResult]:
    name = "Kubernetes version"
    version = req.kubernetes_version
    listing = aws.client("eks").describe_cluster_versions(clusterVersions=[version], includeAll=True)
    found = [v for v in listing.get("clusterVersions", ()) if v.get("clusterVersion") == version]
    supported = [
        v for v in found if str(v.get("versionStatus", v.get("status", ""))).upper().replace("-", "_") != "UNSUPPORTED"
    ]
    if not supported:
        return [
            _failed(
                name,
                f"EKS in {aws.region_name} does not offer Kubernetes {version}" + (" (unsupported)" if found else ""),
                "use a version listed by 'aws eks describe-cluster-versions' that eks-llm-stack pins, or upgrade eks-llm-stack",
            )
        ]
    status = str(supported[0].get("versionStatus", supported[0].get("status", "")))
    if status.upper().replace("-", "_") == "EXTENDED_SUPPORT":
        return [
            CheckResult(
                check=name,
                status=Status.WARN,
                detail=f"Kubernetes {version} is in extended support (billed at a higher hourly rate)",
                fix="upgrade eks-llm-stack to a release that pins a version in standard support",
            )
        ]
    return [_passed(name, f"Kubernetes {version}: {status or 'offered'}")]


def check_secrets(aws: Aws, req: Requirements) -> list[CheckResult]:
    """Secrets the stacks import must exist with a value (FAIL otherwise). Secrets the Data stack creates
    need a value once it has created them (WARN); the fix never says to create one by hand, which would
    make the stack's own create fail."""
    name = "secrets"
    if not req.secret_names and not req.created_secret_names:
        return [_passed(name, "the profile names no secrets")]
    sm = aws.client("secretsmanager")
    results: list[CheckResult] = []
    for secret, created in [(s, False) for s in req.secret_names] + [(s, True) for s in req.created_secret_names]:
        set_value = f"aws secretsmanager put-secret-value --secret-id {secret} --secret-string file://value.txt"
        try:
            # DescribeSecret, not GetSecretValue: preflight learns that a value is set
            # without reading it, so its role needs no access to secret material.
            info = sm.describe_secret(SecretId=secret)
        except Exception as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
            if created:
                results.append(
                    CheckResult(
                        check=name,
                        status=Status.WARN,
                        detail=f"secret '{secret}' does not exist yet: the Data stack creates it, without a value",
                        fix=f"after the Data stack is deployed: {set_value}",
                    )
                )
            else:
                results.append(
                    _failed(
                        name,
                        f"secret '{secret}' does not exist in {aws.region_name}",
                        f"aws secretsmanager create-secret --name {secret} --secret-string file://value.txt",
                    )
                )
            continue
        if info.get("DeletedDate"):
            results.append(
                _failed(
                    name,
                    f"secret '{secret}' is scheduled for deletion",
                    f"aws secretsmanager restore-secret --secret-id {secret}",
                )
            )
        elif not any("AWSCURRENT" in stages for stages in (info.get("VersionIdsToStages") or {}).values()):
            detail = f"secret '{secret}' exists but has no value set"
            if created:
                results.append(CheckResult(check=name, status=Status.WARN, detail=detail, fix=set_value))
            else:
                results.append(_failed(name, detail, set_value))
        else:
            results.append(_passed(name, f"secret '{secret}' has a current value"))
    return results


def check_vpc(aws: Aws, req: Requirements) -> list[CheckResult]:
    name = "imported VPC"
    if not req.vpc_id:
        return [_passed(name, "a new VPC is created (nothing to check)")]
    ec2 = aws.client("ec2")
    try:
        ec2.describe_vpcs(VpcIds=[req.vpc_id])
    except Exception as exc:
        if error_code(exc) != "InvalidVpcID.NotFound":
            raise
        return [
            _failed(
                name,
                f"VPC {req.vpc_id} not found in {aws.region_name}",
                "correct network.vpc_id (aws ec2 describe-vpcs)",
            )
        ]
    vpc_filter = [{"Name": "vpc-id", "Values": [req.vpc_id]}]
    subnets = {s["SubnetId"]: s for s in paginate(ec2, "describe_subnets", "Subnets", Filters=vpc_filter)}
    tables = paginate(ec2, "describe_route_tables", "RouteTables", Filters=vpc_filter)
    main_table = next((t for t in tables if any(a.get("Main") for a in t.get("Associations", ()))), None)
    table_of: dict[str, Any] = {}
    for t in tables:
        for a in t.get("Associations", ()):
            if a.get("SubnetId"):
                table_of[a["SubnetId"]] = t

    def public(subnet_id: str) -> bool:
        table = table_of.get(subnet_id, main_table) or {}
        return any(
            str(r.get("GatewayId", "")).startswith("igw-") and r.get("DestinationCidrBlock") == "0.0.0.0/0"
            for r in table.get("Routes", ())
        )

    results: list[CheckResult] = []
    missing = [s for s in req.private_subnet_ids if s not in subnets]
    if missing:
        results.append(
            _failed(
                name,
                f"subnets {', '.join(missing)} are not in VPC {req.vpc_id}",
                "list only subnets of that VPC in network.private_subnet_ids (aws ec2 describe-subnets --filters Name=vpc-id,Values=...)",
            )
        )
    present = [s for s in req.private_subnet_ids if s in subnets]
    routed_public = [s for s in present if public(s)]
    if routed_public:
        results.append(
            _failed(
                name,
                f"subnets {', '.join(routed_public)} route 0.0.0.0/0 to an internet gateway (public, not private)",
                "list the VPC's private subnets (default route through a NAT gateway or none) in network.private_subnet_ids",
            )
        )
    private = [s for s in present if s not in routed_public]
    zones = sorted({subnets[s]["AvailabilityZone"] for s in private})
    if len(zones) < req.min_azs:
        results.append(
            _failed(
                name,
                f"private subnets span {len(zones)} zone(s) ({', '.join(zones) or 'none'}); EKS needs at least {req.min_azs}",
                f"add private subnets in at least {req.min_azs} zones to network.private_subnet_ids",
            )
        )
    return results or [_passed(name, f"{req.vpc_id}: {len(private)} private subnets in {', '.join(zones)}")]


Check = Callable[[Aws, Requirements], list[CheckResult]]

#: Every check, in the order the table shows them. Credentials come first: without them the rest are skipped.
CHECKS: tuple[tuple[str, Check], ...] = (
    ("cdk bootstrap", check_bootstrap),
    ("EC2 vCPU quota", check_quotas),
    ("instance offerings", check_offerings),
    ("capacity reservations", check_reservations),
    ("Kubernetes version", check_kubernetes_version),
    ("secrets", check_secrets),
    ("imported VPC", check_vpc),
)


def run_preflight(aws: Aws, req: Requirements, bootstrap: Bootstrap = DEFAULT_BOOTSTRAP) -> PreflightReport:
    """Run every check; an unexpected AWS error in one check is a failed row, not a crash.

    ``bootstrap``: the toolkit stack, qualifier and boundary the deploy goes through (default: ``CDKToolkit``).
    """
    results = check_credentials(aws, req)
    if any(r.status is Status.FAIL and "cannot call" in r.detail for r in results):
        skipped = [CheckResult(check=n, status=Status.SKIP, detail="needs working credentials") for n, _ in CHECKS]
        return PreflightReport(tuple(results + skipped))
    for check_name, check in CHECKS:
        try:
            if check is check_bootstrap:
                results.extend(check_bootstrap(aws, req, bootstrap))
            else:
                results.extend(check(aws, req))
        except Exception as exc:
            code = error_code(exc)
            fix = (
                "grant the missing read permission (see docs/ci-ephemeral-clusters.md for the policy)"
                if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation")
                else "retry; if it persists, run with AWS_DEBUG=1 or check the AWS service health"
            )
            results.append(_failed(check_name, f"the check could not run: {exc}", fix))
    return PreflightReport(tuple(results))


def render(report: PreflightReport, width: int | None = None) -> str:
    """The report as a table (check, result, detail, fix) and a closing verdict line."""
    from rich.console import Console
    from rich.table import Table

    table = Table(show_lines=False, expand=False)
    for column in ("check", "result", "detail", "fix"):
        table.add_column(column, overflow="fold")
    styles = {Status.PASS: "green", Status.WARN: "yellow", Status.FAIL: "bold red", Status.SKIP: "dim"}
    for r in report.results:
        table.add_row(r.check, f"[{styles[r.status]}]{r.status.value}[/]", r.detail, r.fix)
    console = Console(width=width or 160, record=True, force_terminal=False, color_system=None)
    with console.capture() as capture:
        console.print(table)
    failed = sum(r.status is Status.FAIL for r in report.results)
    verdict = "preflight passed" if report.ok else f"preflight FAILED: {failed} check(s) failed"
    return capture.get() + verdict + "\n"
