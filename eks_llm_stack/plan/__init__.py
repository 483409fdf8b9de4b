"""The validated profile resolved once into every decision the stacks, ops and CLI read.

:func:`plan_platform` builds the GPU pool props once (each is checked once), plans every model
against them and decides which parts the platform has (Karpenter, storage, the secrets sync,
monitoring and its Grafana login, the serving controllers); the stacks compose from the result and
decide nothing, and ``eks-llm-stack profile validate`` runs the same function, so it rejects exactly
what ``cdk synth`` rejects, with the same messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Profile
from ..config.gpu_pool import GpuNodePoolProps
from ..conventions import GRAFANA_ADMIN_SECRET, secret_name
from .models import (
    CACHE_CLAIMS,
    ModelDeployment,
    api_key_models,
    load_balancer_controller_enabled,
    plan_models,
    serving_controllers_enabled,
)

#: A model's plan (its former name, ``ModelDeployment``, stays).
ModelPlan = ModelDeployment


@dataclass(frozen=True, kw_only=True)
class GrafanaAdminSecret:
    """The Secrets Manager secret holding the in-cluster Grafana's admin login.

    ``name`` — its name, or its complete ARN when the profile gives one; ``create`` — the Data stack
    generates it (``<prefix>/grafana-admin``) rather than importing the profile's existing secret.
    """

    name: str
    create: bool

    @property
    def is_arn(self) -> bool:
        return self.name.startswith("arn:")


@dataclass(frozen=True, kw_only=True)
class PlatformPlan:
    """Every decision for one profile.

    ``pools`` — the GPU pool props (presets applied, checked once); ``models`` — each model's plan
    in profile order (placement, parallelism, weights source, autoscaling, ingress);
    ``karpenter`` — Karpenter and the GPU pools are installed; ``model_storage`` — the Data stack
    creates the model caches; ``external_secrets`` — Secrets Manager secrets are created and synced by
    External Secrets; ``observability`` — monitoring is installed, with ``grafana_admin_secret`` for an
    in-cluster Grafana (None otherwise); ``serving_controllers`` — LWS and KEDA are installed;
    ``load_balancer_controller`` — the AWS Load Balancer Controller is installed; ``api_key_models`` —
    the models that get a generated API key; ``unauthenticated_models`` — vLLM models ask for an API
    key but no secrets are synced (served without one: a synth warning); ``unpinned_ami_pools`` — pools
    whose AMI follows ``latest`` in a long-lived profile (a synth warning); ``cache_claims`` — the
    claim name of each model cache the profile has, by cache kind.
    """

    profile: Profile
    pools: tuple[GpuNodePoolProps, ...]
    models: tuple[ModelPlan, ...]
    karpenter: bool
    model_storage: bool
    external_secrets: bool
    observability: bool
    grafana_admin_secret: GrafanaAdminSecret | None
    serving_controllers: bool
    load_balancer_controller: bool
    api_key_models: tuple[str, ...]
    unauthenticated_models: bool
    unpinned_ami_pools: tuple[str, ...]
    cache_claims: dict[str, str]

    def pool(self, name: str) -> GpuNodePoolProps:
        return next(p for p in self.pools if p.name == name)


def _grafana_admin_secret(profile: Profile) -> GrafanaAdminSecret | None:
    obs = profile.observability
    # Only an in-cluster Grafana has a login of its own, and External Secrets is what carries it there.
    if not (obs.enabled and not obs.managed and profile.secrets.enabled):
        return None
    if obs.grafana_admin_secret:
        return GrafanaAdminSecret(name=obs.grafana_admin_secret, create=False)
    return GrafanaAdminSecret(name=secret_name(profile.prefix, GRAFANA_ADMIN_SECRET), create=True)


def plan_platform(profile: Profile) -> PlatformPlan:
    """Resolve ``profile``; ``ConfigError`` with every problem of every section the plan checks."""
    pools = tuple(profile.compute.pool_props()) if profile.compute.enabled else ()
    keyed = api_key_models(profile)
    storage = profile.storage
    return PlatformPlan(
        profile=profile,
        pools=pools,
        models=plan_models(profile, pools) if profile.models else (),
        karpenter=bool(pools),
        model_storage=storage.enabled,
        external_secrets=profile.secrets.enabled,
        observability=profile.observability.enabled,
        grafana_admin_secret=_grafana_admin_secret(profile),
        serving_controllers=serving_controllers_enabled(profile),
        load_balancer_controller=load_balancer_controller_enabled(profile),
        api_key_models=keyed,
        unauthenticated_models=not profile.secrets.enabled
        and any(m.engine == "vllm" and m.api_key for m in profile.models),
        unpinned_ami_pools=() if profile.ephemeral else tuple(p.name for p in pools if p.ami_version == "latest"),
        cache_claims={
            kind: claim
            for kind, claim in CACHE_CLAIMS.items()
            if (kind == "fsx" and storage.fsx is not None) or (kind == "efs" and storage.efs is not None)
        },
    )


__all__ = ["GrafanaAdminSecret", "ModelPlan", "PlatformPlan", "plan_platform"]
