"""The root of a profile, and loading one from ``config/<name>.yaml``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, field_validator, model_validator

from ..errors import ConfigError, Problem
from .base import StrictModel, check_namespace, fail, validate_model
from .cluster import ClusterConfig
from .compute import ComputeConfig
from .data import SecretsConfig, StorageConfig
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

_TTL = re.compile(r"^(\d+)([mhd])$")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")
_TAG_KEY = re.compile(r"^[\w .:/=+\-@]{1,128}$")


def ttl_seconds(ttl: str) -> int:
    """``'4h'`` -> 14400."""
    m = _TTL.match(ttl)
    if not m:
        raise ValueError(ttl)
    return int(m.group(1)) * {"m": 60, "h": 3600, "d": 86400}[m.group(2)]


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
    ttl: str = Field(default="4h", description="Lifetime of an ephemeral environment ('90m', '4h', '2d').")
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
        return v

    @field_validator("ttl")
    @classmethod
    def _ttl(cls, v: str) -> str:
        if not _TTL.match(v) or ttl_seconds(v) == 0:
            raise fail(f"'{v}' is not a duration", "write a whole number of minutes, hours or days: 90m, 4h, 2d")
        return v

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: dict[str, str]) -> dict[str, str]:
        bad = [k for k in v if not _TAG_KEY.match(k) or k.lower().startswith("aws:")]
        if bad:
            raise fail(
                f"tag keys {bad} are not allowed",
                "use 1-128 letters, digits, spaces or _ . : / = + - @, not starting with 'aws:'",
            )
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
        return self.cluster.name or f"{self.prefix}-cluster"

    @property
    def stack_prefix(self) -> str:
        """``llm`` -> ``Llm``: the start of every stack name."""
        return "".join(part.capitalize() for part in self.prefix.split("-"))


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
    try:
        data: Any = yaml.safe_load(path.read_text()) or {}
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
    """Validate a profile given as a dict (e.g. built in Python by another repository)."""
    profile: Profile = validate_model(Profile, data, subject)
    return profile
