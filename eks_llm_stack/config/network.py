"""Profile section ``network``: a new VPC, or an existing one imported by id."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, field_validator, model_validator

from .base import StrictModel, fail

Endpoint = Literal["s3", "ecr", "sts", "ec2", "sqs", "logs", "secretsmanager", "elasticfilesystem"]


def _is_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def check_cidr(value: str) -> str:
    if isinstance(value, str) and "/" not in value and _is_address(value):
        # ipaddress reads a bare address as a /32; AWS APIs that take CIDRs refuse it.
        raise fail(
            f"'{value}' is a bare IP address, not a CIDR block",
            f"add the prefix length: '{value}/32' for this one address, or the network such as 203.0.113.0/24",
        )
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise fail(
            f"'{value}' is not a CIDR block",
            "write an IPv4 network such as 10.0.0.0/16 or 203.0.113.7/32 (host bits zero)",
        ) from None
    return value


#: The VPC sizes AWS accepts for a VPC's primary IPv4 block.
VPC_PREFIX_RANGE = (16, 28)


class NetworkConfig(StrictModel):
    """Where the cluster lives.

    With no ``vpc_id`` a new VPC is created across ``max_azs`` availability zones with one
    public and one private subnet per zone; the private subnets carry the
    ``karpenter.sh/discovery`` tag so GPU pools find them. With ``vpc_id`` an existing VPC is
    imported; then ``private_subnet_ids`` must name its private subnets (no lookups at synth).
    """

    vpc_id: str | None = Field(default=None, description="Import this VPC instead of creating one.")
    private_subnet_ids: tuple[str, ...] = Field(
        default=(), description="Private subnets of the imported VPC (required with vpc_id)."
    )
    availability_zones: tuple[str, ...] = Field(
        default=(),
        description="Zones of the imported subnets, in the same order; for a new VPC, pin "
        "these zones instead of the region's first max_azs.",
    )
    cidr: str = Field(default="10.0.0.0/16", description="CIDR of a new VPC.")
    max_azs: int = Field(default=3, ge=2, le=6, description="Zones of a new VPC.")
    nat_gateways: int = Field(
        default=1, ge=0, le=6, description="NAT gateways of a new VPC (1 saves cost; one per zone for HA)."
    )
    endpoints: tuple[Endpoint, ...] = Field(
        default=(),
        description="VPC endpoints to create (S3 is a gateway endpoint, the rest interface endpoints).",
    )
    flow_logs: bool = Field(default=True, description="VPC flow logs to CloudWatch Logs for a new VPC.")

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, v: str) -> str:
        check_cidr(v)
        net = ipaddress.ip_network(v)
        low, high = VPC_PREFIX_RANGE
        if net.version != 4 or not low <= net.prefixlen <= high:
            raise fail(
                f"'{v}' is not a VPC block AWS accepts (IPv4, /{low} to /{high})",
                f"use a block between /{low} and /{high}, e.g. 10.0.0.0/16",
            )
        return v

    @field_validator("vpc_id")
    @classmethod
    def _vpc_id(cls, v: str | None) -> str | None:
        if v is not None and not (v.startswith("vpc-") and len(v) > 4):
            raise fail(f"'{v}' is not a VPC id", "use the id shown by 'aws ec2 describe-vpcs', e.g. vpc-0abc1234")
        return v

    @field_validator("private_subnet_ids")
    @classmethod
    def _subnets(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [s for s in v if not s.startswith("subnet-")]
        if bad:
            raise fail(f"{bad} are not subnet ids", "use ids like subnet-0abc1234")
        return v

    @model_validator(mode="after")
    def _layout_fits(self) -> NetworkConfig:
        if self.vpc_id:
            return self
        zones = len(self.availability_zones) or self.max_azs
        # A new VPC gets a /22 public and a /18 private subnet per zone (see ClusterNetwork).
        needed = zones * (2 ** (32 - 22) + 2 ** (32 - 18))
        size = ipaddress.ip_network(self.cidr).num_addresses
        if needed > size:
            raise fail(
                f"cidr {self.cidr} holds {size} addresses; {zones} zones of a /22 public and a /18 private subnet "
                f"need {needed}",
                "use a /16 such as 10.0.0.0/16, fewer zones (max_azs), or import an existing VPC with vpc_id",
            )
        return self

    @model_validator(mode="after")
    def _imported_needs_subnets(self) -> NetworkConfig:
        if self.vpc_id and len(self.private_subnet_ids) < 2:
            raise fail(
                "an imported VPC needs at least two private subnets (private_subnet_ids)",
                "list the private subnet ids of the VPC in two or more zones",
            )
        if self.vpc_id and self.availability_zones and len(self.availability_zones) != len(self.private_subnet_ids):
            raise fail(
                "availability_zones and private_subnet_ids differ in length",
                "give one zone per private subnet, in the same order",
            )
        return self
