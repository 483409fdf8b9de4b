"""Profile section ``models``: the vLLM endpoints of the Serving stack.

Each entry becomes an OpenAI-compatible endpoint (``http://<name>.<serving namespace>.svc:8000``).
Checks that need only the entry itself run here, when the profile loads; checks that need the
compute pools, the storage section or the sizing engine run in the Serving stack
(:func:`eks_llm_stack.stacks.serving.check_models`), which reports every problem of every model
at once.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ..naming import is_dns_label
from .base import StrictModel, fail

Engine = Literal["vllm", "simulator"]
CacheKind = Literal["fsx", "efs", "none"]
IngressKind = Literal["alb", "nlb"]
IngressScheme = Literal["internal", "internet-facing"]

#: Longest model name: the LeaderWorkerSet of a multi-node model names StatefulSets and pods
#: ``<name>-group-<replica>-<worker>`` and their revision labels must stay within 63 characters.
MAX_NAME_LENGTH = 40
#: The spot interruption notice: pods on spot must be gone within it.
SPOT_NOTICE_SECONDS = 120
_HF_REPO = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_REVISION = re.compile(r"^[\w./-]{1,200}$")
_ACM_ARN = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]{36}$")
_CIDR = re.compile(r"^(\d{1,3}\.){3}\d{1,3}/\d{1,2}$")
_S3_LOGS = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[\w!.*'()/-]*)?$")
_WAF_ARN = re.compile(r"^arn:aws[a-z-]*:wafv2:[a-z0-9-]+:\d{12}:regional/webacl/[\w-]+/[0-9a-f-]{36}$")
_HOST = re.compile(r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$")
SOURCE_FIX = (
    "write s3://bucket/prefix (copied from S3), hf://org/model[@revision] (Hugging Face Hub) "
    "or pvc://claim/path (a directory on a PersistentVolumeClaim of the serving namespace)"
)


@dataclass(frozen=True)
class ModelSource:
    """A parsed ``source``: ``kind`` is s3, hf or pvc."""

    kind: Literal["s3", "hf", "pvc"]
    #: s3: ``s3://bucket/prefix``; hf: the repository id; pvc: the claim name.
    location: str
    #: hf: the revision (default ``main``); pvc: the directory inside the claim ("" = its root).
    detail: str = ""

    @property
    def bucket(self) -> str:
        return self.location.removeprefix("s3://").split("/", 1)[0]

    @property
    def prefix(self) -> str:
        rest = self.location.removeprefix("s3://").split("/", 1)
        return rest[1].strip("/") if len(rest) > 1 else ""


def parse_source(source: str) -> ModelSource:
    """``'hf://Qwen/Qwen3-8B@main'`` -> ``ModelSource('hf', 'Qwen/Qwen3-8B', 'main')``; ``ValueError`` otherwise."""
    from .data import parse_s3_path

    if source.startswith("s3://"):
        bucket, prefix = parse_s3_path(source)
        return ModelSource("s3", f"s3://{bucket}/{prefix}".rstrip("/"))
    if source.startswith("hf://"):
        repo, _, revision = source.removeprefix("hf://").partition("@")
        if not _HF_REPO.match(repo) or (revision and not _REVISION.match(revision)):
            raise ValueError(source)
        return ModelSource("hf", repo, revision or "main")
    if source.startswith("pvc://"):
        claim, _, path = source.removeprefix("pvc://").partition("/")
        path = path.strip("/")
        if not is_dns_label(claim) or len(claim) > 63 or ".." in path.split("/") or not re.fullmatch(r"[\w./-]*", path):
            raise ValueError(source)
        return ModelSource("pvc", claim, path)
    raise ValueError(source)


class ReplicasConfig(StrictModel):
    """How many copies of the model serve at once."""

    min: int = Field(default=1, ge=0, description="Fewest replicas (0 only with scale_to_zero). Default: 1.")
    max: int = Field(default=1, ge=1, description="Most replicas the autoscaler may run. Default: 1.")

    @model_validator(mode="after")
    def _order(self) -> ReplicasConfig:
        if self.min > self.max:
            raise fail(
                f"min replicas ({self.min}) is greater than max replicas ({self.max})",
                f"raise max to at least {self.min}, or lower min to at most {self.max}",
            )
        return self


class AutoscalingConfig(StrictModel):
    """KEDA scaling on vLLM's own metrics, read from Prometheus. Active when replicas.max > replicas.min."""

    waiting_per_replica: float = Field(
        default=4.0, gt=0, description="Target of vllm:num_requests_waiting per replica (queue depth). Default: 4."
    )
    kv_cache_target: float = Field(
        default=0.8, gt=0, le=1, description="Target of vllm:kv_cache_usage_perc per replica (1 = full). Default: 0.8."
    )
    polling_seconds: int = Field(
        default=15, ge=5, le=300, description="How often KEDA queries Prometheus. Default: 15."
    )
    scale_down_seconds: int = Field(
        default=600,
        ge=0,
        le=3600,
        description="Stabilization window before removing a replica (GPU pods are slow to bring back). Default: 600.",
    )
    idle_minutes: int = Field(
        default=30,
        ge=1,
        le=1440,
        description="With scale_to_zero: minutes without requests before going to zero. Default: 30.",
    )
    prometheus_url: str | None = Field(
        default=None,
        description="Prometheus to query. Default: the kube-prometheus-stack service in namespace monitoring.",
    )

    @field_validator("prometheus_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"https?://[\w.-]+(:\d+)?(/[\w./-]*)?", v):
            raise fail(
                f"'{v}' is not an http(s) URL", "write e.g. http://kube-prometheus-stack-prometheus.monitoring.svc:9090"
            )
        return v


class IngressConfig(StrictModel):
    """An AWS load balancer in front of the model (AWS Load Balancer Controller). Off unless given."""

    kind: IngressKind = Field(
        default="alb", description="alb (HTTPS Ingress, TLS from ACM) or nlb (TLS listener). Default: alb."
    )
    scheme: IngressScheme = Field(
        default="internal", description="internal (VPC only) or internet-facing. Default: internal."
    )
    certificate_arn: str = Field(description="ACM certificate for TLS (required: endpoints are never served in clear).")
    host: str | None = Field(
        default=None, description="Host name the ALB routes (e.g. llama.models.example.com). Default: any host."
    )
    allowed_cidrs: tuple[str, ...] = Field(
        default=(),
        description="Client CIDRs allowed in (the load balancer's security group / source ranges). Default: the "
        "VPC's CIDR (network.cidr); required with an imported VPC and with internet-facing. The load balancer "
        "controller's own default, which this replaces, is 0.0.0.0/0 whatever the scheme.",
    )
    access_logs: str | None = Field(
        default=None,
        description="s3://bucket/prefix for the load balancer's access logs (the bucket policy must let Elastic "
        "Load Balancing write). Default: no access logs.",
    )
    waf_acl_arn: str | None = Field(
        default=None, description="AWS WAF (wafv2, regional) web ACL to attach to the ALB (alb only). Default: none."
    )

    @field_validator("certificate_arn")
    @classmethod
    def _arn(cls, v: str) -> str:
        if not _ACM_ARN.match(v):
            raise fail(f"'{v}' is not an ACM certificate ARN", "use arn:aws:acm:<region>:<account>:certificate/<uuid>")
        return v

    @field_validator("host")
    @classmethod
    def _host(cls, v: str | None) -> str | None:
        if v is not None and not _HOST.match(v):
            raise fail(f"'{v}' is not a host name", "write a lowercase DNS name such as llama.models.example.com")
        return v

    @field_validator("allowed_cidrs")
    @classmethod
    def _cidrs(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [c for c in v if not _CIDR.match(c)]
        if bad:
            raise fail(f"{bad} are not IPv4 CIDR blocks", "write blocks such as 10.0.0.0/8")
        return v

    @field_validator("access_logs")
    @classmethod
    def _logs(cls, v: str | None) -> str | None:
        if v is not None and not _S3_LOGS.match(v):
            raise fail(f"'{v}' is not an S3 location", "write s3://bucket or s3://bucket/prefix")
        return v

    @field_validator("waf_acl_arn")
    @classmethod
    def _waf(cls, v: str | None) -> str | None:
        if v is not None and not _WAF_ARN.match(v):
            raise fail(
                f"'{v}' is not a regional WAF web ACL ARN",
                "use arn:aws:wafv2:<region>:<account>:regional/webacl/<name>/<id>",
            )
        return v

    @model_validator(mode="after")
    def _waf_on_alb(self) -> IngressConfig:
        if self.waf_acl_arn is not None and self.kind != "alb":
            raise fail("waf_acl_arn attaches to an ALB only", "use kind: alb, or remove waf_acl_arn")
        return self

    @property
    def access_logs_bucket(self) -> str | None:
        return self.access_logs.removeprefix("s3://").split("/", 1)[0] if self.access_logs else None

    @property
    def access_logs_prefix(self) -> str:
        rest = self.access_logs.removeprefix("s3://").split("/", 1) if self.access_logs else []
        return rest[1].strip("/") if len(rest) > 1 else ""


class ModelConfig(StrictModel):
    """One served model. Only ``name`` and ``source`` are required; sizing fills in the rest."""

    name: str = Field(description="Endpoint name: Deployment, Service and served model name (a DNS label).")
    source: str | None = Field(
        default=None,
        description="Where the weights are: s3://bucket/prefix, hf://org/model[@revision] or pvc://claim/path. "
        "Required for engine vllm.",
    )
    model: str | None = Field(
        default=None,
        description="Architecture for sizing: a catalog name (llama-3.1-8b) or Hugging Face id. "
        "Default: the repository of an hf:// source. Required for s3:// and pvc:// sources.",
    )
    engine: Engine = Field(default="vllm", description="vllm, or simulator (CPU-only stand-in for CI). Default: vllm.")
    image: str | None = Field(
        default=None,
        description="Container image. Default: the pinned vllm/vllm-openai (vllm) "
        "or the project's own image, versions.BENCH_HARNESS_IMAGE (simulator).",
    )
    replicas: ReplicasConfig = Field(default_factory=ReplicasConfig, description="Default: {min: 1, max: 1}.")
    pool: str | tuple[str, ...] | None = Field(
        default=None,
        description="GPU pool name, or several (e.g. a spot and an on-demand pool of the same families). "
        "Default: every inference pool (a multi-node model: every training pool), or the only pool.",
    )
    instance_type: str | None = Field(
        default=None, description="Pin the instance type. Default: the sizing engine's choice among the pool's."
    )
    tensor_parallel_size: int | None = Field(
        default=None, ge=1, description="Pin TP (GPUs per node). Default: from sizing."
    )
    pipeline_parallel_size: int | None = Field(
        default=None, ge=1, description="Pin PP (nodes per replica). Default: from sizing."
    )
    dtype: str | None = Field(
        default=None, description="Weight dtype (bf16, fp16, fp8, int8, int4). Default: the checkpoint's."
    )
    kv_cache_dtype: Literal["auto", "fp8"] = Field(default="auto", description="KV cache dtype. Default: auto.")
    max_model_len: int | None = Field(
        default=None, ge=16, description="Longest sequence. Default: min(model limit, 4096)."
    )
    concurrency: int = Field(
        default=8, ge=1, description="Full-length sequences one replica holds at once. Default: 8."
    )
    gpu_memory_utilization: float = Field(
        default=0.9,
        description="Share of GPU memory vLLM takes, strictly between 0 and 1 (the CUDA context and graphs need the rest). Default: 0.9.",
    )
    vllm_args: tuple[str, ...] = Field(
        default=(), description="Extra vLLM arguments, appended after the sizing engine's (later wins). Default: none."
    )
    multi_node: bool | None = Field(
        default=None,
        description="Assert a multi-node (true) or single-node (false) plan. Default: whatever sizing chooses.",
    )
    cache: CacheKind | None = Field(
        default=None,
        description="Model cache volume for s3:// and hf:// sources: fsx, efs or none (fetch at every start). "
        "Default: fsx if the profile has FSx, else efs if it has EFS, else none.",
    )
    autoscaling: AutoscalingConfig = Field(
        default_factory=AutoscalingConfig, description="KEDA settings. Default: see AutoscalingConfig."
    )
    scale_to_zero: bool = Field(
        default=False,
        description="Remove every replica after autoscaling.idle_minutes without requests. Default: false.",
    )
    prepull: bool = Field(
        default=False, description="Pre-pull the image on every node of the pool (DaemonSet). Default: false."
    )
    ingress: IngressConfig | None = Field(
        default=None, description="Load balancer in front of the model. Default: none (ClusterIP)."
    )
    api_key: bool = Field(
        default=True,
        description="Require 'Authorization: Bearer <key>' on every path but /health, /metrics, /ping and /version; "
        "the key is generated in Secrets Manager (<prefix>/api-key/<name>) and synced by External Secrets (needs "
        "secrets.enabled). false serves the model without a key (refused with an internet-facing load balancer). "
        "The simulator takes no key. Default: true.",
    )
    termination_grace_seconds: int = Field(
        default=110,
        ge=10,
        le=3600,
        description="Time a stopping pod gets to finish streams; at most 120 on spot pools. Default: 110.",
    )
    startup_seconds: int | None = Field(
        default=None,
        ge=30,
        le=7200,
        description="Longest model load before the pod is restarted. Default: 1800 (vllm), 120 (simulator).",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not is_dns_label(v, MAX_NAME_LENGTH):
            raise fail(
                f"'{v}' is not a valid model name (a DNS label of at most {MAX_NAME_LENGTH} characters)",
                "use lowercase letters, digits and '-', starting and ending with a letter or digit, e.g. llama-3-8b",
            )
        return v

    @field_validator("gpu_memory_utilization")
    @classmethod
    def _gpu_memory_utilization(cls, v: float) -> float:
        # The sizing engine refuses 1.0 too: the same rule at both doors, with the same words.
        if not (math.isfinite(v) and 0 < v < 1):
            raise fail(
                "must be a fraction strictly between 0 and 1 (the CUDA context and graphs need the rest)",
                "use e.g. 0.90 (vLLM's default), or leave it out",
            )
        return v

    @field_validator("source")
    @classmethod
    def _source(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            parse_source(v)
        except ValueError:
            raise fail(f"'{v}' is not a model source", SOURCE_FIX) from None
        return v

    @model_validator(mode="after")
    def _consistent(self) -> ModelConfig:
        problems: list[tuple[str, str]] = []
        if self.engine == "vllm" and self.source is None:
            problems.append(("engine vllm needs a source", SOURCE_FIX))
        if self.replicas.min == 0 and not self.scale_to_zero:
            problems.append(("replicas.min is 0 but scale_to_zero is off", "set scale_to_zero: true, or min: 1"))
        if self.scale_to_zero and self.replicas.max == 0:
            problems.append(("scale_to_zero needs replicas.max of at least 1", "set replicas.max: 1 or more"))
        if self.engine == "vllm" and self.model is None and self.source is not None:
            parsed = parse_source(self.source)
            if parsed.kind != "hf":
                problems.append(
                    (
                        f"the architecture of a {parsed.kind}:// source is unknown to the sizing engine",
                        "add model: <catalog name or Hugging Face id>, e.g. model: llama-3.1-8b",
                    )
                )
        ing = self.ingress
        if ing is not None and ing.scheme == "internet-facing":
            if not ing.allowed_cidrs:
                problems.append(
                    (
                        "ingress.allowed_cidrs: an internet-facing load balancer needs the client CIDRs it admits",
                        "list them under ingress.allowed_cidrs (0.0.0.0/0 only if the whole internet is meant)",
                    )
                )
            if not self.api_key or self.engine != "vllm":
                problems.append(
                    (
                        "ingress.scheme: an internet-facing load balancer needs an authenticated model "
                        f"({'the simulator takes no API key' if self.engine != 'vllm' else 'api_key is false'})",
                        "keep api_key: true on a vllm model, or use scheme: internal",
                    )
                )
        if problems:
            raise fail("; ".join(m for m, _ in problems), "; ".join(f for _, f in problems))
        return self

    @property
    def pool_names(self) -> tuple[str, ...]:
        """``pool`` as a tuple (empty: not given)."""
        if self.pool is None:
            return ()
        return (self.pool,) if isinstance(self.pool, str) else tuple(self.pool)

    @property
    def parsed_source(self) -> ModelSource | None:
        return parse_source(self.source) if self.source is not None else None

    @property
    def sizing_model(self) -> str | None:
        """What the sizing engine resolves: ``model``, else the repository of an hf:// source."""
        if self.model is not None:
            return self.model
        src = self.parsed_source
        return src.location if src is not None and src.kind == "hf" else None

    @property
    def autoscaled(self) -> bool:
        return self.replicas.max > self.replicas.min or self.scale_to_zero


def duplicate_names(models: tuple[ModelConfig, ...]) -> list[str]:
    """Model names used more than once, sorted."""
    seen: set[str] = set()
    dupes: set[str] = set()
    for m in models:
        (dupes if m.name in seen else seen).add(m.name)
    return sorted(dupes)
