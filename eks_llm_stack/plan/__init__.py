"""The validated profile resolved once into every decision the stacks, ops and CLI read.

:func:`plan_platform` builds the GPU pool props once (each is checked once) and plans every model
against them; the stacks compose from the result, and ``eks-llm-stack profile validate`` runs the
same function, so it rejects exactly what ``cdk synth`` rejects, with the same messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Profile
from ..config.gpu_pool import GpuNodePoolProps
from .models import (
    CACHE_CLAIMS,
    ModelDeployment,
    load_balancer_controller_enabled,
    plan_models,
    serving_controllers_enabled,
)

#: A model's plan (its former name, ``ModelDeployment``, stays).
ModelPlan = ModelDeployment


@dataclass(frozen=True, kw_only=True)
class PlatformPlan:
    """Every decision for one profile.

    ``pools`` — the GPU pool props (presets applied, checked once); ``models`` — each model's plan
    in profile order; ``serving_controllers`` — LWS and KEDA are installed; ``load_balancer_controller``
    — the AWS Load Balancer Controller is installed; ``cache_claims`` — the claim name per cache kind.
    """

    profile: Profile
    pools: tuple[GpuNodePoolProps, ...]
    models: tuple[ModelPlan, ...]
    serving_controllers: bool
    load_balancer_controller: bool
    cache_claims: dict[str, str]

    def pool(self, name: str) -> GpuNodePoolProps:
        return next(p for p in self.pools if p.name == name)


def plan_platform(profile: Profile) -> PlatformPlan:
    """Resolve ``profile``; ``ConfigError`` with every problem of every section the plan checks."""
    pools = tuple(profile.compute.pool_props()) if profile.compute.enabled else ()
    return PlatformPlan(
        profile=profile,
        pools=pools,
        models=plan_models(profile, pools) if profile.models else (),
        serving_controllers=serving_controllers_enabled(profile),
        load_balancer_controller=load_balancer_controller_enabled(profile),
        cache_claims=dict(CACHE_CLAIMS),
    )


__all__ = ["ModelPlan", "PlatformPlan", "plan_platform"]
