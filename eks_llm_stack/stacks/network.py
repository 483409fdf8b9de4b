"""``Network``: the VPC. Changes rarely; everything else depends on it."""

from __future__ import annotations

from constructs import Construct

from ..config import Profile
from ..constructs.network import ClusterNetwork, ClusterNetworkProps
from ..conventions import NETWORK_STACK
from .base import PlatformStackBase


class NetworkStack(PlatformStackBase):
    def __init__(
        self, scope: Construct, *, profile: Profile, expires_at: str | None = None, deployment_id: str | None = None
    ) -> None:
        super().__init__(
            scope,
            NETWORK_STACK,
            profile=profile,
            description="VPC and endpoints",
            expires_at=expires_at,
            deployment_id=deployment_id,
        )
        n = profile.network
        self.network = ClusterNetwork(
            self,
            "Network",
            props=ClusterNetworkProps(
                cluster_name=profile.cluster_name,
                vpc_id=n.vpc_id,
                private_subnet_ids=n.private_subnet_ids,
                availability_zones=n.availability_zones,
                cidr=n.cidr,
                max_azs=n.max_azs,
                nat_gateways=n.nat_gateways,
                endpoints=n.endpoints,
                flow_logs=n.flow_logs,
                ephemeral=profile.ephemeral,
            ),
        )
        self.vpc = self.network.vpc
        self.private_subnets = self.network.private_subnets
