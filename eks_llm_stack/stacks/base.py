"""What every stack of the platform shares: naming, tags and the environment."""

from __future__ import annotations

import cdk8s
from aws_cdk import CfnOutput, CfnResource, Environment, Fn, Stack, Tags
from aws_cdk import aws_cloudformation as cfn
from aws_cdk import aws_eks_v2 as eks
from constructs import Construct

from ..config import Profile
from ..config.ephemeral import platform_tags
from ..conventions import (
    DEPLOYMENT_ID_OUTPUT,
    TAG_DEPLOYMENT_ID,
    TAG_EPHEMERAL,
    TAG_EXPIRES_AT,
    TAG_NAME,
    TAG_PROFILE,
)
from ..naming import pascal_case, stack_name

__all__ = ["TAG_DEPLOYMENT_ID", "TAG_EPHEMERAL", "TAG_EXPIRES_AT", "TAG_NAME", "TAG_PROFILE", "PlatformStackBase"]


class PlatformStackBase(Stack):
    """A stack of the platform: named ``<Prefix>-<Role>`` (``role`` of ``conventions.STACK_ROLES``), tagged,
    in the profile's environment.

    Environment-agnostic when the profile names no account/region. Availability zones are the
    region's first ``max_azs`` (``Fn::GetAZs``) unless the profile pins them, so a new VPC spans
    three zones without any lookup, with or without an account.
    """

    def __init__(
        self,
        scope: Construct,
        role: str,
        *,
        profile: Profile,
        description: str,
        expires_at: str | None = None,
        deployment_id: str | None = None,
        termination_protection: bool = False,
    ) -> None:
        env = Environment(account=profile.account, region=profile.region) if profile.account else None
        super().__init__(
            scope,
            stack_name(profile.prefix, role),
            env=env,
            description=f"eks-llm-stack {role}: {description} (profile {profile.name})",
            termination_protection=termination_protection,
        )
        self.profile = profile
        # The user's tags first, the library's after them: a profile can never forge ownership.
        tags = platform_tags(
            profile_name=profile.name,
            prefix=profile.prefix,
            user_tags=profile.tags,
            ephemeral=profile.ephemeral,
            expires_at=expires_at,
            deployment_id=deployment_id,
        )
        if profile.ephemeral and deployment_id:
            # The deployment id again, from the template: tags can be set by anyone who can tag a
            # stack, an output only by deploying this app. 'down' and 'reap' require both to agree.
            CfnOutput(self, DEPLOYMENT_ID_OUTPUT, value=deployment_id)
        for key, value in tags.items():
            Tags.of(self).add(key, value)
        #: The tags above, for what CloudFormation does not tag itself (instances Karpenter launches,
        #: volumes the EBS CSI driver creates), so teardown and cost reports can find them.
        self.resource_tags: dict[str, str] = dict(tags)

    def ensure_not_empty(self) -> None:
        """CloudFormation refuses a stack with no resources; keep the stack (and its name) with a no-op one.

        Stacks are split by lifecycle, not by content: a profile without models still has a
        ``Serving`` stack, so adding the first model is an update, not a new deployment order.
        """
        if not any(isinstance(c, CfnResource) for c in self.node.find_all()):
            cfn.CfnWaitConditionHandle(self, "Empty")

    @property
    def availability_zones(self) -> list[str]:
        # Never a context lookup (it would need credentials at synth): explicit zones, or the
        # region's first N through Fn::GetAZs, resolved by CloudFormation at deploy time.
        if self.profile.network.availability_zones:
            return list(self.profile.network.availability_zones)

        return [Fn.select(i, Fn.get_azs()) for i in range(self.profile.network.max_azs)]


class ChartRegistry:
    """The cdk8s charts of one platform: applied through the cluster, and written as YAML.

    Every chart is registered once with the stack that applies it; :meth:`apply` creates the
    ``KubernetesManifest`` in that stack, and the registry keeps ``(name, chart, stack)`` so
    ``dist/manifests/<name>.yaml`` can be rendered with the stack resolving its tokens.
    """

    def __init__(self) -> None:
        self.app = cdk8s.App()
        self.entries: list[tuple[str, object, Stack]] = []
        #: The documents each chart was applied with, by chart name: ``dist/manifests`` writes exactly
        #: these (a chart's ``to_json()`` is a jsii round trip that validates the whole cdk8s app).
        self.documents: dict[str, list[dict]] = {}

    def apply(self, stack: Stack, name: str, chart, cluster, *, depends_on=()):
        """Apply ``chart`` to ``cluster`` from ``stack``; return the manifest construct."""

        if any(n == name for n, _, _ in self.entries):
            raise ValueError(f"chart name '{name}' registered twice")
        documents = list(chart.to_json())
        manifest = eks.KubernetesManifest(
            stack,
            f"Chart{pascal_case(name)}",
            cluster=cluster,
            manifest=documents,
            # Server-side apply with overwrite: re-deploys converge instead of failing on drift.
            overwrite=True,
        )
        if depends_on:
            # One round trip for all of them (constructs' add_dependency takes many).
            manifest.node.add_dependency(*depends_on)
        self.entries.append((name, chart, stack))
        self.documents[name] = documents
        return manifest
