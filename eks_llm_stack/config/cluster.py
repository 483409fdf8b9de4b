"""Profile section ``cluster``: the EKS control plane, access and the system node group."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from .. import versions
from .base import StrictModel, fail
from .network import check_cidr

_ARN = re.compile(r"^arn:aws[a-z-]*:(iam|sts)::\d{12}:(role|user|assumed-role)/[\w+=,.@/-]+$")


class EndpointConfig(StrictModel):
    """Who can reach the Kubernetes API. Default: the private endpoint only (reachable from the VPC)."""

    public: bool = Field(default=False, description="Public endpoint, restricted to public_cidrs (required with it).")
    private: bool = Field(default=True, description="Private endpoint inside the VPC.")
    public_cidrs: tuple[str, ...] = Field(
        default=(),
        description="CIDRs allowed on the public endpoint (your offices, VPN egress); required when public is true.",
    )
    runner_cidrs: tuple[str, ...] = Field(
        default=(),
        description="Egress CIDRs of the CI runners that run kubectl against an ephemeral cluster; when set, the "
        "public endpoint is on for these blocks (and public_cidrs). Also settable with -c runner_cidrs=a/32,b/32.",
    )
    allow_public_internet: bool = Field(
        default=False,
        description="Accept a /0 block (the whole internet) in public_cidrs or runner_cidrs; deliberate opt-out, "
        "see docs/security.md.",
    )

    @field_validator("public_cidrs", "runner_cidrs")
    @classmethod
    def _cidrs(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for c in v:
            check_cidr(c)
        return v

    @property
    def public_enabled(self) -> bool:
        """Whether the public endpoint is on (asked for, or needed by CI runners)."""
        return self.public or bool(self.runner_cidrs)

    @property
    def allowed_cidrs(self) -> tuple[str, ...]:
        """The blocks the public endpoint admits."""
        return tuple(dict.fromkeys((*self.public_cidrs, *self.runner_cidrs)))

    @model_validator(mode="after")
    def _one_endpoint(self) -> EndpointConfig:
        if not (self.public_enabled or self.private):
            raise fail(
                "both the public and the private endpoint are off",
                "set private: true (and public: false for a private-only cluster)",
            )
        if self.public and not self.public_cidrs:
            raise fail(
                "public: true needs public_cidrs (EKS would otherwise open the API to 0.0.0.0/0)",
                "list the blocks allowed to reach the API, e.g. public_cidrs: [203.0.113.0/24], "
                "or set public: false to keep the private endpoint only",
            )
        if self.public_cidrs and not self.public:
            raise fail(
                "public_cidrs is set but the public endpoint is off (public: false)",
                "set public: true to open the endpoint to these blocks, or remove public_cidrs",
            )
        wide = [c for c in self.allowed_cidrs if c.endswith("/0")]
        if wide and not self.allow_public_internet:
            raise fail(
                f"{wide} opens the Kubernetes API to the whole internet",
                "list narrower blocks (offices, VPN, CI runner egress), or set allow_public_internet: true "
                "deliberately (see docs/security.md)",
            )
        return self


class SystemNodesConfig(StrictModel):
    """The small on-demand managed node group where controllers run (tainted CriticalAddonsOnly)."""

    instance_types: tuple[str, ...] = Field(default=("m7i.large",), min_length=1)
    desired: int = Field(default=2, ge=1, le=20)
    min: int = Field(default=2, ge=1, le=20)
    max: int = Field(default=4, ge=1, le=50)
    disk_gib: int = Field(default=50, ge=20, le=1000)

    @model_validator(mode="after")
    def _sizes(self) -> SystemNodesConfig:
        if not (self.min <= self.desired <= self.max):
            raise fail(
                f"need min <= desired <= max, got {self.min} <= {self.desired} <= {self.max}",
                "adjust system_nodes.min / desired / max",
            )
        return self


class ClusterConfig(StrictModel):
    """The EKS cluster."""

    name: str | None = Field(default=None, description="Cluster name; defaults to '<prefix>-cluster'.")
    kubernetes_version: str = Field(
        default=versions.KUBERNETES_VERSION,
        description="Kubernetes minor version; must match the kubectl layer this library pins.",
    )
    admins: tuple[str, ...] = Field(
        default=(),
        description="IAM role/user ARNs given cluster-admin through access entries.",
    )
    endpoint: EndpointConfig = Field(default_factory=EndpointConfig)
    system_nodes: SystemNodesConfig = Field(default_factory=SystemNodesConfig)
    addon_versions: dict[str, str] = Field(
        default_factory=dict,
        description="Pin managed add-on versions by name (e.g. vpc-cni: v1.20.4-eksbuild.1); default: "
        "EKS's default version for the Kubernetes version.",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]{0,99}", v):
            raise fail(
                f"'{v}' is not a valid EKS cluster name",
                "start with a letter; use letters, digits, '-' and '_' (max 100)",
            )
        return v

    @field_validator("kubernetes_version")
    @classmethod
    def _version(cls, v: str) -> str:
        if v != versions.KUBERNETES_VERSION:
            raise fail(
                f"Kubernetes {v} is not the version this release pins "
                f"(its kubectl layer is for {versions.KUBERNETES_VERSION})",
                f"use '{versions.KUBERNETES_VERSION}', or upgrade eks-llm-stack for a newer version",
            )
        return v

    @field_validator("admins")
    @classmethod
    def _admins(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [a for a in v if not _ARN.match(a)]
        if bad:
            raise fail(
                f"{bad} are not IAM role or user ARNs", "use ARNs like arn:aws:iam::123456789012:role/platform-admins"
            )
        return v
