"""The deployable units, split by lifecycle: Network -> Data -> Platform -> Serving."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import App

from ..config import Profile
from ..plan import PlatformPlan, plan_platform
from .base import ChartRegistry
from .data import DataStack
from .network import NetworkStack
from .platform import PlatformStack
from .serving import ServingStack


@dataclass(frozen=True)
class LlmPlatform:
    """The four stacks of one profile and the charts they apply."""

    network: NetworkStack
    data: DataStack
    platform: PlatformStack
    serving: ServingStack
    charts: ChartRegistry
    #: The decisions the stacks were composed from.
    plan: PlatformPlan

    @property
    def stacks(self) -> tuple[NetworkStack, DataStack, PlatformStack, ServingStack]:
        return (self.network, self.data, self.platform, self.serving)


def build_platform(
    app: App, profile: Profile, *, expires_at: str | None = None, deployment_id: str | None = None
) -> LlmPlatform:
    """Compose the whole platform for ``profile`` into ``app``: the plan is computed once, first (so a
    bad profile fails before any construct exists), and every stack composes from it."""
    plan = plan_platform(profile)
    charts = ChartRegistry()
    network = NetworkStack(app, profile=profile, expires_at=expires_at, deployment_id=deployment_id)
    data = DataStack(
        app, profile=profile, plan=plan, network=network, expires_at=expires_at, deployment_id=deployment_id
    )
    platform = PlatformStack(
        app,
        profile=profile,
        plan=plan,
        network=network,
        data=data,
        charts=charts,
        expires_at=expires_at,
        deployment_id=deployment_id,
    )
    serving = ServingStack(
        app,
        profile=profile,
        plan=plan,
        platform=platform,
        charts=charts,
        expires_at=expires_at,
        deployment_id=deployment_id,
    )
    for stack in (network, data, platform, serving):
        stack.ensure_not_empty()
    return LlmPlatform(network=network, data=data, platform=platform, serving=serving, charts=charts, plan=plan)


__all__ = ["DataStack", "LlmPlatform", "NetworkStack", "PlatformStack", "ServingStack", "build_platform"]
