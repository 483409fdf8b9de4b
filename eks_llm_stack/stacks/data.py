"""``Data``: everything stateful (model storage, secrets). RETAIN unless the profile is ephemeral.

Deploys before ``Platform`` and never references it, so the platform can be replaced or
destroyed without touching the data.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from constructs import Construct

from ..config import Profile
from .base import PlatformStackBase
from .network import NetworkStack


class DataStack(PlatformStackBase):
    def __init__(
        self, scope: Construct, *, profile: Profile, network: NetworkStack, expires_at: str | None = None
    ) -> None:
        super().__init__(
            scope,
            "Data",
            profile=profile,
            description="model storage and secrets (stateful)",
            expires_at=expires_at,
            # Deleting this stack by accident would delete nothing (RETAIN) but orphan the data.
            termination_protection=not profile.ephemeral,
        )
        self.add_stack_dependency(network)
        self.vpc = network.vpc
        self.private_subnets = network.private_subnets
        #: How stateful resources of this stack are removed with it.
        self.removal_policy = RemovalPolicy.DESTROY if profile.ephemeral else RemovalPolicy.RETAIN

        # -- model storage (FSx for Lustre, EFS) -------------------------------------------------

        # -- secrets (Secrets Manager) -----------------------------------------------------------
