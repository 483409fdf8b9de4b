"""``Serving``: the models. Changes most often; adding a model touches only this stack."""

from __future__ import annotations

from constructs import Construct

from ..config import Profile
from .base import ChartRegistry, PlatformStackBase
from .platform import PlatformStack


class ServingStack(PlatformStackBase):
    def __init__(
        self,
        scope: Construct,
        *,
        profile: Profile,
        platform: PlatformStack,
        charts: ChartRegistry,
        expires_at: str | None = None,
    ) -> None:
        super().__init__(scope, "Serving", profile=profile, description="model endpoints (vLLM)", expires_at=expires_at)
        self.add_stack_dependency(platform)
        self.cluster = platform.cluster

        # -- models ---------------------------------------------------------------------------------
