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
        from ..constructs.model_storage import ModelStorage, ModelStorageProps

        #: ``ModelStorage`` or None; its ``client_security_group`` goes on every node (Platform).
        self.model_storage: ModelStorage | None = None
        if profile.storage.enabled:
            self.model_storage = ModelStorage(
                self,
                "ModelStorage",
                props=ModelStorageProps(
                    vpc=self.vpc,
                    subnets=self.private_subnets,
                    fsx=profile.storage.fsx,
                    efs=profile.storage.efs,
                    ephemeral=profile.ephemeral,
                    removal_policy=self.removal_policy,
                ),
            )

        # -- secrets (Secrets Manager) -----------------------------------------------------------
        from ..constructs.model_secrets import ModelSecrets, ModelSecretsProps

        #: ``ModelSecrets`` or None; synced into the serving namespace by External Secrets (Platform).
        self.model_secrets: ModelSecrets | None = None
        if profile.secrets.enabled:
            rotation = None
            if profile.secrets.rotation_lambda_arn:
                from aws_cdk import aws_lambda

                arn = profile.secrets.rotation_lambda_arn
                rotation = aws_lambda.Function.from_function_arn(self, "SecretRotation", arn)
            self.model_secrets = ModelSecrets(
                self,
                "ModelSecrets",
                props=ModelSecretsProps(
                    names=profile.secrets.names,
                    name_prefix=profile.prefix,
                    removal_policy=self.removal_policy,
                    rotation_lambda=rotation,
                    rotation_days=profile.secrets.rotation_days,
                ),
            )
