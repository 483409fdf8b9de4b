"""``Data``: everything stateful (model storage, secrets). RETAIN unless the profile is ephemeral.

Deploys before ``Platform`` and never references it, so the platform can be replaced or
destroyed without touching the data.
"""

from __future__ import annotations

import json

from aws_cdk import Annotations, RemovalPolicy, aws_lambda
from aws_cdk import aws_secretsmanager as sm
from constructs import Construct

from ..config import Profile
from ..constructs.model_secrets import ModelApiKeys, ModelApiKeysProps, ModelSecrets, ModelSecretsProps
from ..constructs.model_storage import EfsCacheOptions, LustreOptions, ModelStorage, ModelStorageProps
from ..conventions import DATA_STACK
from ..gates.nag import acknowledge
from ..plan import PlatformPlan
from .base import PlatformStackBase
from .network import NetworkStack


class DataStack(PlatformStackBase):
    def __init__(
        self,
        scope: Construct,
        *,
        profile: Profile,
        plan: PlatformPlan,
        network: NetworkStack,
        expires_at: str | None = None,
        deployment_id: str | None = None,
    ) -> None:
        super().__init__(
            scope,
            DATA_STACK,
            profile=profile,
            description="model storage and secrets (stateful)",
            expires_at=expires_at,
            deployment_id=deployment_id,
            # Deleting this stack by accident would delete nothing (RETAIN) but orphan the data.
            termination_protection=not profile.ephemeral,
        )
        self.add_stack_dependency(network)
        self.vpc = network.vpc
        self.private_subnets = network.private_subnets
        #: How stateful resources of this stack are removed with it.
        self.removal_policy = RemovalPolicy.DESTROY if profile.ephemeral else RemovalPolicy.RETAIN

        # -- model storage (FSx for Lustre, EFS) -------------------------------------------------
        #: ``ModelStorage`` or None; its ``client_security_group`` goes on every node (Platform).
        self.model_storage: ModelStorage | None = None
        if plan.model_storage:
            self.model_storage = ModelStorage(
                self,
                "ModelStorage",
                props=ModelStorageProps(
                    vpc=self.vpc,
                    subnets=self.private_subnets,
                    fsx=LustreOptions.from_config(profile.storage.fsx) if profile.storage.fsx else None,
                    efs=EfsCacheOptions.from_config(profile.storage.efs) if profile.storage.efs else None,
                    ephemeral=profile.ephemeral,
                    removal_policy=self.removal_policy,
                ),
            )

        # -- secrets (Secrets Manager) -----------------------------------------------------------
        #: ``ModelSecrets`` or None; synced into the serving namespace by External Secrets (Platform).
        self.model_secrets: ModelSecrets | None = None
        if plan.external_secrets:
            rotation = None
            if profile.secrets.rotation_lambda_arn:
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

        # -- model API keys (generated; new construct ids, the model-hub secrets' key) --------------
        #: ``ModelApiKeys`` or None (no secrets section: External Secrets is what carries the keys).
        self.api_keys: ModelApiKeys | None = None
        keyed = plan.api_key_models
        if self.model_secrets is not None and keyed:
            self.api_keys = ModelApiKeys(
                self,
                "ModelApiKeys",
                props=ModelApiKeysProps(
                    models=keyed,
                    name_prefix=profile.prefix,
                    encryption_key=self.model_secrets.key,
                    removal_policy=self.removal_policy,
                ),
            )
        elif plan.unauthenticated_models:
            Annotations.of(self).add_warning_v2(
                "eks-llm-stack:unauthenticated-models",
                "secrets.enabled is false: the models are served without an API key (the key is synced by "
                "External Secrets). Set secrets.enabled: true, or api_key: false on each model to say so.",
            )

        # -- observability credentials (Grafana admin login) ---------------------------------------
        #: Secrets Manager secret with the in-cluster Grafana's admin login, and its name (None: no Grafana).
        self.grafana_admin_secret: sm.ISecret | None = None
        self.grafana_admin_secret_name: str | None = None
        grafana = plan.grafana_admin_secret
        if grafana is not None and self.model_secrets is not None:
            self.grafana_admin_secret_name = grafana.name
            if not grafana.create and grafana.is_arn:
                self.grafana_admin_secret = sm.Secret.from_secret_complete_arn(self, "GrafanaAdmin", grafana.name)
            elif not grafana.create:
                self.grafana_admin_secret = sm.Secret.from_secret_name_v2(self, "GrafanaAdmin", grafana.name)
            else:
                secret = sm.Secret(
                    self,
                    "GrafanaAdmin",
                    secret_name=self.grafana_admin_secret_name,
                    description="Grafana admin login (generated); synced into the monitoring namespace by External Secrets",
                    encryption_key=self.model_secrets.key,
                    # Generated by Secrets Manager at deploy time: the password never appears in the template.
                    generate_secret_string=sm.SecretStringGenerator(
                        secret_string_template=json.dumps({"username": "admin"}),
                        generate_string_key="password",
                        exclude_punctuation=True,
                        password_length=32,
                    ),
                    removal_policy=self.removal_policy,
                )
                acknowledge(
                    secret,
                    "AwsSolutions-SMG4",
                    "Break-glass login of the in-cluster Grafana; rotate with 'aws secretsmanager put-secret-value' "
                    "and External Secrets carries it to Grafana within the refresh interval.",
                )
                self.grafana_admin_secret = secret
