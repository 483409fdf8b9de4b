"""The root of a profile, and loading one from ``config/<name>.yaml``."""

from __future__ import annotations

import difflib
import functools
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationInfo, field_validator, model_validator

from .. import conventions
from ..errors import ConfigError, Problem
from ..naming import stack_prefix_of as stack_prefix_of  # re-exported: its former home
from .base import StrictModel, check_namespace, fail, validate_model
from .cluster import ClusterConfig
from .compute import ComputeConfig
from .data import SecretsConfig, StorageConfig, looks_like_secret
from .ephemeral import CEILING_TTL, DEFAULT_MAX_TTL, RESERVED_TAG_PREFIX, is_reserved_tag, ttl_problem
from .network import NetworkConfig
from .observability import ObservabilityConfig
from .serving import ModelConfig

#: Profiles shipped with the library: package data (in the repository, ``config/`` is the same folder).
PROFILE_DIR = Path(__file__).resolve().parent.parent / "profiles"
#: A project's own profiles: ``config/`` of the working directory, searched before the shipped ones.
USER_PROFILE_DIR = Path("config")


def profile_dirs(directory: Path | None = None) -> list[Path]:
    """Where profile names are looked up, first match wins: ``directory`` alone when given."""
    if directory is not None:
        return [directory]
    dirs = [USER_PROFILE_DIR, PROFILE_DIR]
    return [d for i, d in enumerate(dirs) if d.is_dir() and all(d.resolve() != e.resolve() for e in dirs[:i])]


_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")
_TAG_KEY = re.compile(r"^[\w .:/=+\-@]{1,128}$")
_TAG_VALUE = re.compile(r"^[\w .:/=+\-@]{0,256}$")

#: AWS allows 50 tags per resource; the library adds up to 4 stack tags (eks-llm-stack:*) and Karpenter
#: up to 6 on the instances it launches (karpenter.sh/nodepool, eks:eks-cluster-name, Name, ...).
MAX_PROFILE_TAGS = 40

#: Bounds of a profile file: real profiles are a few KiB. Past these a file is refused before parsing
#: (size) or before building objects (aliases, expanded nodes), in well under a second.
MAX_PROFILE_BYTES = 256 * 1024
MAX_YAML_ALIASES = 100
MAX_YAML_NODES = 50_000


def _short(value: object, limit: int = 40) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Profile(StrictModel):
    """A deployable configuration of the platform. See ``docs/profiles.md``."""

    name: str = Field(default="default", description="Profile name; set from the file name when loaded.")
    prefix: str = Field(
        default="llm",
        description="Prefix of stack names and of generated resource names; two prefixes can share an account.",
    )
    account: str | None = Field(default=None, description="AWS account id; absent = environment-agnostic synth.")
    region: str | None = Field(default=None, description="AWS region; absent = environment-agnostic synth.")
    ephemeral: bool = Field(
        default=False,
        description="A throw-away environment: stateful resources are DESTROYed with the stack "
        "and everything is tagged with an expiry.",
    )
    max_ttl: str = Field(
        default=DEFAULT_MAX_TTL,
        description="Longest lifetime 'ttl' or 'ephemeral up --ttl' may ask for. Default: 7d (at most 90d).",
    )
    ttl: str = Field(
        default="4h",
        description="Lifetime of an ephemeral environment ('90m', '4h', '2d'): ASCII digits and m, h or d, "
        "at most max_ttl.",
    )
    tags: dict[str, str] = Field(default_factory=dict, description="Tags on every taggable resource.")
    serving_namespace: str = Field(
        default="llm-serving", description="Kubernetes namespace of the models, their storage claims and secrets."
    )
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    compute: ComputeConfig = Field(default_factory=ComputeConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    secrets: SecretsConfig = Field(default_factory=SecretsConfig)
    observability: ObservabilityConfig = Field(default_factory=ObservabilityConfig)
    models: tuple[ModelConfig, ...] = Field(default=(), description="Models served by the Serving stack.")

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,19}", v):
            raise fail(
                f"'{v}' is not a usable prefix", "use 1-20 lowercase letters, digits or '-', starting with a letter"
            )
        return v

    @field_validator("serving_namespace")
    @classmethod
    def _namespace(cls, v: str) -> str:
        return check_namespace(v)

    @field_validator("account")
    @classmethod
    def _account(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"\d{12}", v):
            raise fail(
                f"'{v}' is not an AWS account id", "use the 12-digit id, quoted in YAML: account: '123456789012'"
            )
        return v

    @field_validator("region")
    @classmethod
    def _region(cls, v: str | None) -> str | None:
        if v is not None and not _REGION.match(v):
            raise fail(f"'{v}' is not an AWS region name", "use a region code such as us-east-1 or eu-west-1")
        if v is not None and v not in known_regions():
            close = difflib.get_close_matches(v, sorted(known_regions()), n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise fail(
                f"'{v}' is not an AWS region (not in the region list bundled with botocore {botocore_version()})",
                f"{hint}use a region code such as us-east-1 or eu-west-1 ('aws ec2 describe-regions' lists yours)",
            )
        return v

    @field_validator("max_ttl")
    @classmethod
    def _max_ttl(cls, v: str) -> str:
        problem = ttl_problem(v, CEILING_TTL)
        if problem:
            raise fail(*problem)
        return v

    @field_validator("ttl")
    @classmethod
    def _ttl(cls, v: str, info: ValidationInfo) -> str:
        # max_ttl is declared (and so validated) first; if it was bad, bound by the ceiling instead.
        problem = ttl_problem(v, info.data.get("max_ttl") or CEILING_TTL)
        if problem:
            raise fail(*problem)
        return v

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: dict[str, str]) -> dict[str, str]:
        problems: list[str] = []
        fixes: list[str] = []
        if len(v) > MAX_PROFILE_TAGS:
            problems.append(
                f"{len(v)} tags; AWS allows 50 per resource and the library adds up to {50 - MAX_PROFILE_TAGS} of its own"
            )
            fixes.append(f"keep at most {MAX_PROFILE_TAGS} tags (merge related ones, e.g. one 'cost' tag)")
        bad = [k for k in v if not isinstance(k, str) or not _TAG_KEY.match(k) or k.lower().startswith("aws:")]
        if bad:
            problems.append(f"tag keys {[_short(k) for k in bad]} are not allowed")
            fixes.append("keys: 1-128 letters, digits, spaces or _ . : / = + - @, not starting with 'aws:'")
        # Case-insensitive, as IAM compares tag keys: 'EKS-LLM-STACK:name' would forge ownership too.
        reserved = [k for k in v if isinstance(k, str) and is_reserved_tag(k)]
        if reserved:
            problems.append(
                f"tag keys {reserved} are reserved: set by the library itself ('{RESERVED_TAG_PREFIX}*') "
                "(after the profile's), and 'ephemeral down' and 'reap' act on them"
            )
            fixes.append(
                f"remove them from 'tags' (use keys outside '{RESERVED_TAG_PREFIX}'; an ephemeral environment is "
                "made with 'ephemeral: true' and 'eks-llm-stack ephemeral up')"
            )
        bad_values = [_short(k) for k, val in v.items() if not isinstance(val, str) or not _TAG_VALUE.match(val)]
        if bad_values:
            problems.append(f"the values of tags {bad_values} are not allowed")
            fixes.append("values: at most 256 letters, digits, spaces or _ . : / = + - @ (quote numbers in YAML)")
        if problems:
            raise fail("; ".join(problems), "; ".join(fixes))
        return v

    @model_validator(mode="after")
    def _env_pair(self) -> Profile:
        if (self.account is None) != (self.region is None):
            raise fail(
                "account and region must be given together (or both left out for an environment-agnostic synth)",
                "add the missing one, or remove both",
            )
        return self

    @model_validator(mode="after")
    def _grafana_needs_secret_sync(self) -> Profile:
        obs = self.observability
        if obs.enabled and not obs.managed and not self.secrets.enabled:
            raise fail(
                "observability.enabled runs Grafana in the cluster, whose admin login is synced from Secrets Manager "
                "by External Secrets, but secrets.enabled is false",
                "set secrets.enabled: true, or observability.managed: true (Amazon Managed Grafana), "
                "or observability.enabled: false",
            )
        return self

    @property
    def cluster_name(self) -> str:
        return self.cluster.name or conventions.cluster_name(self.prefix)

    @property
    def stack_prefix(self) -> str:
        """``llm`` -> ``Llm``: the start of every stack name (see :func:`eks_llm_stack.naming.stack_prefix_of`)."""
        return stack_prefix_of(self.prefix)


@functools.cache
def known_regions() -> frozenset[str]:
    """Every region of every partition in botocore's bundled endpoint data (offline, no credentials)."""
    import botocore.session

    session = botocore.session.get_session()
    regions: set[str] = set()
    for partition in session.get_available_partitions():
        regions |= set(session.get_available_regions("ec2", partition_name=partition))
    return frozenset(regions)


def botocore_version() -> str:
    import botocore

    return str(botocore.__version__)


@functools.cache
def instance_types_offered(region: str) -> frozenset[str] | None:
    """The instance types ``region`` offers, from Karpenter's generated price list; None where it has no list."""
    import json

    path = (
        Path(__file__).resolve().parents[1]
        / "third_party"
        / "karpenter-1.14.1"
        / "generated"
        / "derived-on-demand-prices.json"
    )
    data = json.loads(path.read_text())
    lists = [types for partition in data["partitions"].values() for types in partition["regions"].values()]
    priced = set().union(*lists)
    from ..catalog.instances import INSTANCES

    # Capacity-Block-only types (p5e...) have no on-demand price anywhere: not knowable, so not refused.
    catalog = INSTANCES.values() if isinstance(INSTANCES, dict) else INSTANCES
    unpriced = {i.name for i in catalog} - priced
    for partition in data["partitions"].values():
        if region in partition["regions"]:
            return frozenset(partition["regions"][region]) | unpriced
    return None


class YamlTooLarge(yaml.YAMLError):
    """A YAML document whose aliases expand past the bounds a profile may have."""


class _BoundedLoader(yaml.SafeLoader):
    """A SafeLoader that counts aliases while composing, before any Python object is built.

    PyYAML shares an anchored object between its aliases, so a few hundred bytes of nested aliases
    (a "billion laughs") parse quickly into a small graph that every later walk -- validation,
    printing -- expands into millions of nodes. The graph is measured here, expanded, with
    memoisation, and refused past the bounds.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_YAML_ALIASES:
                raise YamlTooLarge(f"uses more than {MAX_YAML_ALIASES} YAML aliases (*name)")
        return super().compose_node(parent, index)


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = 1  # a cycle counts once here; the constructor refuses recursive profiles anyway
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(n, memo) for n in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    memo[key] = size
    if size > MAX_YAML_NODES:
        raise YamlTooLarge(f"expands to more than {MAX_YAML_NODES} values once its aliases are resolved")
    return size


def load_bounded_yaml(text: str) -> Any:
    """``yaml.safe_load`` with bounds on aliases and on the expanded document size (:class:`YamlTooLarge`)."""
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, {})
        return loader.construct_document(node)
    finally:
        loader.dispose()


def list_profiles(directory: Path | None = None) -> list[str]:
    """Names of the profiles found in :func:`profile_dirs` (a project's own and the shipped ones)."""
    return sorted({p.name.removesuffix(".yaml") for d in profile_dirs(directory) for p in d.glob("*.yaml")})


def read_profile_data(name_or_path: str | Path, directory: Path | None = None) -> tuple[dict[str, Any], str]:
    """The raw mapping of a profile file and the subject for its errors (no validation yet)."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        candidates = [d / f"{name_or_path}.yaml" for d in profile_dirs(directory)]
        path = next((c for c in candidates if c.is_file()), candidates[0] if candidates else path)
    name = path.name.removesuffix(".yaml").removesuffix(".yml")
    subject = f"profile '{name}' ({path})"
    if not path.is_file():
        known = ", ".join(list_profiles(directory)) or "(none)"
        raise ConfigError(
            subject,
            [
                Problem(
                    "profile",
                    "no such profile file",
                    f"use one of: {known}; or pass a path to a YAML file",
                    str(name_or_path),
                )
            ],
        )
    size = path.stat().st_size
    if size > MAX_PROFILE_BYTES:
        raise ConfigError(
            subject,
            [
                Problem(
                    "(file)",
                    f"is {size} bytes; a profile is at most {MAX_PROFILE_BYTES // 1024} KiB",
                    "check that this is the profile you meant; split generated content out of it "
                    "(shipped profiles are under 5 KiB)",
                )
            ],
        )
    try:
        data: Any = load_bounded_yaml(path.read_text(encoding="utf-8", errors="replace")) or {}
    except YamlTooLarge as exc:
        raise ConfigError(
            subject, [Problem("(file)", str(exc), "write the values out instead of repeating anchors (&a / *a)")]
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise ConfigError(
            subject,
            [
                Problem(
                    "(file)",
                    f"is not valid YAML at {where}: {getattr(exc, 'problem', exc)}",
                    "fix the YAML syntax there",
                )
            ],
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            subject,
            [
                Problem(
                    "(file)",
                    "must be a mapping of key: value at the top level",
                    "start the file with keys such as 'prefix:'",
                    data,
                )
            ],
        )
    data.setdefault("name", name)
    return data, subject


def load_profile(name_or_path: str | Path, directory: Path | None = None) -> Profile:
    """Load and validate a profile by name (``config/<name>.yaml``) or by path.

    Raises :class:`ConfigError` listing every problem; never a bare parser traceback.
    """
    data, subject = read_profile_data(name_or_path, directory)
    return validate_profile(data, subject)


def validate_profile(data: dict[str, Any], subject: str = "profile") -> Profile:
    """Validate a profile given as a dict (e.g. built in Python by another repository).

    Secret-looking strings anywhere are refused first, so no later error message echoes one.
    """
    secrets = secret_problems(data)
    if secrets:
        raise ConfigError(subject, secrets)
    profile: Profile = validate_model(Profile, data, subject)
    problems = region_problems(profile)
    if problems:
        raise ConfigError(subject, problems)
    return profile


def secret_problems(data: Any) -> list[Problem]:
    """A Problem for every free-form string (or mapping key) of the profile that holds a token.

    The same detector as the ``secrets`` section and the output scan (:func:`looks_like_secret`);
    ``secrets`` itself is left to its own check. The value is never echoed.
    """
    found: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                here = f"{path}.{k}" if path else str(k)
                if path == "" and k == "secrets":
                    continue
                if isinstance(k, str) and looks_like_secret(k):
                    found.append(f"{path or '(top level)'} (a key)")
                    continue
                walk(v, here)
        elif isinstance(node, (list, tuple)):
            for i, item in enumerate(node):
                walk(item, f"{path}[{i}]")
        elif isinstance(node, str) and looks_like_secret(node):
            found.append(path)

    walk(data, "")
    return [
        Problem(
            field,
            "holds what looks like a token or API key (Hugging Face, NGC); the profile, the templates and "
            "dist/manifests/ are plaintext",
            "remove it; keep the value in Secrets Manager (secrets.names, then 'aws secretsmanager "
            "put-secret-value --secret-id <prefix>/<name> --secret-string file://token.txt'), which the "
            "platform syncs and mounts (see docs/storage-and-secrets.md)",
        )
        for field in found
    ]


def region_problems(profile: Profile) -> list[Problem]:
    """Placement groups in one zone of the region; instance types the region offers (where the catalog knows)."""
    out: list[Problem] = []
    region = profile.region
    zones = set(profile.network.availability_zones)
    offered = instance_types_offered(region) if region else None
    for i, pool in enumerate(profile.compute.pools):
        props = pool.props
        where = f"compute.pools[{i}]"
        az = props.availability_zone
        pg = props.placement_group
        if pg is not None and pg.strategy == "cluster" and az is None and len(zones) != 1:
            out.append(
                Problem(
                    f"{where}.availability_zone",
                    f"pool '{pool.name}' has a cluster placement group, which lives in one availability zone, but "
                    f"the pool may launch in every zone of the VPC ({len(zones) or profile.network.max_azs})",
                    f"set availability_zone for the pool, e.g. {region or 'us-east-1'}a",
                )
            )
        if az is not None and region and not az.startswith(region):
            out.append(
                Problem(f"{where}.availability_zone", f"is not a zone of region {region}", f"use e.g. {region}a", az)
            )
        elif az is not None and zones and az not in zones:
            out.append(
                Problem(
                    f"{where}.availability_zone",
                    "is not one of network.availability_zones",
                    f"use one of {sorted(zones)}",
                    az,
                )
            )
        if offered is not None:
            missing = [t for t in props.instance_types if t not in offered]
            if missing:
                out.append(
                    Problem(
                        f"{where}.instance_types",
                        f"are not offered in {region} (Karpenter's price list for the region)",
                        f"use types {region} offers ('aws ec2 describe-instance-type-offerings --region {region}')",
                        missing,
                    )
                )
    if offered is not None:
        missing = [t for t in profile.cluster.system_nodes.instance_types if t not in offered]
        if missing:
            example = next((t for t in ("m7i.large", "m6i.large", "m5.large") if t in offered), "an m-family type")
            out.append(
                Problem(
                    "cluster.system_nodes.instance_types",
                    f"are not offered in {region}",
                    f"use types {region} offers, e.g. {example}",
                    missing,
                )
            )
    return out
