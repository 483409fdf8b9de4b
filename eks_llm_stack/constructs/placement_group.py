"""EC2 placement groups for GPU pools, and the single-AZ subnet choice they impose.

Karpenter (>= 1.11) only *selects* a placement group (``EC2NodeClass.placementGroupSelector``);
this construct *creates* one and hands the pool its selector. A cluster placement group lives
in one availability zone, so the pool's subnets are narrowed to one zone here — an error if
the caller's subnets span several and no zone was chosen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aws_cdk import Token
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from ..config.gpu_pool import PlacementGroupSpec
from ..errors import collecting

_STRATEGIES = {
    "cluster": ec2.PlacementGroupStrategy.CLUSTER,
    "partition": ec2.PlacementGroupStrategy.PARTITION,
    "spread": ec2.PlacementGroupStrategy.SPREAD,
}


class PoolPlacementGroup(Construct):
    """An ``AWS::EC2::PlacementGroup`` for one GPU pool (strategy cluster by default).

    ``placement_group`` is the L2 group; :meth:`selector` is the EC2NodeClass
    ``placementGroupSelector`` that points at it (by name: CloudFormation generates it).
    """

    def __init__(self, scope: Construct, id: str, *, spec: PlacementGroupSpec | None = None) -> None:
        super().__init__(scope, id)
        spec = spec if spec is not None else PlacementGroupSpec()
        self.spec = spec
        partitions = spec.partitions if spec.partitions is not None else (2 if spec.strategy == "partition" else None)
        self.placement_group = ec2.PlacementGroup(
            self,
            "Group",
            strategy=_STRATEGIES[spec.strategy],
            partitions=partitions,
            # Spread groups default to rack level, the only level outside Outposts.
            spread_level=ec2.PlacementGroupSpreadLevel.RACK if spec.strategy == "spread" else None,
        )

    @property
    def placement_group_name(self) -> str:
        return self.placement_group.placement_group_name

    def selector(self) -> dict[str, Any]:
        """The EC2NodeClass ``placementGroupSelector`` for this group."""
        return {"name": self.placement_group_name}


@dataclass(frozen=True, kw_only=True)
class ZoneChoice:
    """The subnets a pool may use and the one zone they lie in (``None``: not known at synth time)."""

    subnets: tuple[ec2.ISubnet, ...]
    zone: str | None


def single_zone_subnets(subnets: Sequence[ec2.ISubnet], *, availability_zone: str | None, pool: str) -> ZoneChoice:
    """Narrow ``subnets`` to one availability zone, as a cluster placement group requires.

    With ``availability_zone`` the subnets in that zone are kept (error if none); without it
    the subnets must already lie in a single zone (error naming the zones otherwise). Zones
    that are tokens (an environment-agnostic stack) cannot be compared and are returned as is.
    """
    subnets = tuple(subnets)
    with collecting(f"GpuNodePool '{pool}'") as p:
        zones = [s.availability_zone for s in subnets]
        if any(Token.is_unresolved(z) for z in zones) or (availability_zone and Token.is_unresolved(availability_zone)):
            return ZoneChoice(subnets=subnets, zone=availability_zone)
        distinct = sorted(set(zones))
        if availability_zone is not None:
            kept = tuple(s for s in subnets if s.availability_zone == availability_zone)
            if not kept and subnets:
                p.add(
                    "availability_zone",
                    f"none of the pool's subnets is in this zone (they are in {', '.join(distinct)})",
                    f"use one of {', '.join(distinct)}",
                    availability_zone,
                )
            return ZoneChoice(subnets=kept, zone=availability_zone)
        if len(distinct) > 1:
            p.add(
                "availability_zone",
                f"a placement group lives in one availability zone, but the pool's subnets span {len(distinct)} "
                f"({', '.join(distinct)})",
                f"set availability_zone to one of {', '.join(distinct)}, or pass subnets of a single zone",
            )
        if not subnets:
            p.add(
                "availability_zone",
                "a placement group needs a single availability zone and none is known",
                "set availability_zone (e.g. us-east-1a), or pass the VPC's subnets so the zone can be checked",
            )
        return ZoneChoice(subnets=subnets, zone=distinct[0] if len(distinct) == 1 else None)
