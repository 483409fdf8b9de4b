"""Profile sections ``storage`` and ``secrets``: stateful resources of the Data stack.

Both sections describe resources only. A secret's *value* never belongs in a profile: a
profile is committed, copied into CI logs and rendered into templates. The ``secrets``
section therefore refuses anything that looks like a value and says how to set it instead.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ..conventions import HF_TOKEN_SECRET
from .base import StrictModel, fail

DeploymentType = Literal["PERSISTENT_2", "SCRATCH_2"]
ImportEvent = Literal["NEW", "CHANGED", "DELETED"]
IaTransition = Literal[
    "AFTER_1_DAY", "AFTER_7_DAYS", "AFTER_14_DAYS", "AFTER_30_DAYS", "AFTER_60_DAYS", "AFTER_90_DAYS"
]

#: FSx for Lustre: both supported types take 1200 GiB or a multiple of 2400 GiB.
FSX_CAPACITY_STEP_GIB = 2400
FSX_MIN_CAPACITY_GIB = 1200
#: PERSISTENT_2 throughput tiers, MB/s per TiB of storage.
FSX_THROUGHPUT_TIERS = (125, 250, 500, 1000)

_S3_PATH = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(?P<prefix>[^\s]*))?$")
# Secrets Manager: 1-512 characters, ASCII letters, digits and /_+=.@-
SECRET_NAME_PATTERN = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
# ESO durations are Go durations; a single unit keeps the profile readable.
_DURATION = re.compile(r"^[1-9]\d*(s|m|h)$")

#: How an operator sets a secret; quoted by every error that refuses a value.
PUT_SECRET_VALUE = (
    "remove the value from the profile; after deploying the Data stack set it with "
    "'aws secretsmanager put-secret-value --secret-id <prefix>/<name> --secret-string file://token.txt' "
    "(see docs/storage-and-secrets.md)"
)


def parse_s3_path(path: str) -> tuple[str, str]:
    """``'s3://bucket/a/b/'`` -> ``('bucket', 'a/b')``; raises ``ValueError`` for anything else."""
    m = _S3_PATH.match(path)
    if not m or ".." in m.group("bucket"):
        raise ValueError(path)
    return m.group("bucket"), (m.group("prefix") or "").strip("/")


def _check_s3_path(value: str) -> str:
    try:
        parse_s3_path(value)
    except ValueError:
        raise fail(
            f"'{value}' is not an S3 path",
            "write s3://bucket or s3://bucket/prefix (bucket: 3-63 lowercase letters, digits, '.' or '-')",
        ) from None
    return value


class DataRepositoryConfig(StrictModel):
    """Link the FSx file system to an S3 prefix (a data repository association).

    Give either ``s3_path`` (an existing bucket) or ``new_bucket: true`` (a bucket created in the
    Data stack, with ``new_bucket_prefix``), never both.
    """

    s3_path: str | None = Field(default=None, description="s3://bucket[/prefix] of an existing bucket. Default: none.")
    new_bucket: bool = Field(default=False, description="Create the bucket in the Data stack. Default: false.")
    new_bucket_prefix: str = Field(default="models", description="Prefix in the new bucket. Default: 'models'.")
    file_system_path: str = Field(
        default="/models", description="Where the S3 prefix appears in the file system. Default: /models."
    )
    import_metadata_on_create: bool = Field(
        default=True,
        description="List the S3 objects into the file system when the association is created. Default: true.",
    )
    auto_import: tuple[ImportEvent, ...] = Field(
        default=("NEW", "CHANGED", "DELETED"),
        description="S3 events mirrored into the file system (auto-import policy). Default: all three; [] = off.",
    )
    auto_export: tuple[ImportEvent, ...] = Field(
        default=(),
        description="File-system events written back to S3 (auto-export policy). Default: none (read-only cache).",
    )

    @field_validator("s3_path")
    @classmethod
    def _s3(cls, v: str | None) -> str | None:
        return None if v is None else _check_s3_path(v)

    @field_validator("file_system_path")
    @classmethod
    def _fs_path(cls, v: str) -> str:
        if not re.fullmatch(r"/[A-Za-z0-9._/-]*", v) or "//" in v or len(v) > 4096:
            raise fail(f"'{v}' is not a file system path", "use an absolute path such as /models")
        return v

    @field_validator("new_bucket_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9!_.*'()/-]{0,1024}", v):
            raise fail(f"'{v}' is not a usable S3 prefix", "use letters, digits and / _ . - only, e.g. models")
        return v.strip("/")

    @model_validator(mode="after")
    def _one_bucket(self) -> DataRepositoryConfig:
        if (self.s3_path is None) == (not self.new_bucket):
            raise fail(
                "give either s3_path (an existing bucket) or new_bucket: true, not both and not neither",
                "keep exactly one of s3_path and new_bucket",
            )
        return self


class FsxConfig(StrictModel):
    """FSx for Lustre: fast, parallel reads of model weights, backed by S3 if configured."""

    deployment_type: DeploymentType | None = Field(
        default=None,
        description="PERSISTENT_2 or SCRATCH_2. Default: PERSISTENT_2, or SCRATCH_2 when the profile is ephemeral.",
    )
    storage_capacity_gib: int = Field(default=1200, description="1200 GiB or a multiple of 2400 GiB. Default: 1200.")
    throughput_per_unit: int = Field(
        default=250,
        description="MB/s per TiB for PERSISTENT_2: 125, 250, 500 or 1000 (ignored by SCRATCH_2). Default: 250.",
    )
    data_repository: DataRepositoryConfig | None = Field(
        default=None, description="S3 data repository association. Default: none (an empty file system)."
    )

    @field_validator("storage_capacity_gib")
    @classmethod
    def _capacity(cls, v: int) -> int:
        if not (v == FSX_MIN_CAPACITY_GIB or (v > 0 and v % FSX_CAPACITY_STEP_GIB == 0)):
            lower = max(FSX_CAPACITY_STEP_GIB, v // FSX_CAPACITY_STEP_GIB * FSX_CAPACITY_STEP_GIB)
            raise fail(
                f"{v} GiB is not a capacity FSx for Lustre (PERSISTENT_2 / SCRATCH_2) accepts",
                f"use 1200 or a multiple of 2400 GiB, e.g. {lower} or {lower + FSX_CAPACITY_STEP_GIB}",
            )
        return v

    @field_validator("throughput_per_unit")
    @classmethod
    def _throughput(cls, v: int) -> int:
        if v not in FSX_THROUGHPUT_TIERS:
            raise fail(
                f"{v} MB/s/TiB is not a PERSISTENT_2 throughput tier",
                f"use one of {', '.join(map(str, FSX_THROUGHPUT_TIERS))}",
            )
        return v

    def effective_deployment_type(self, ephemeral: bool) -> DeploymentType:
        """The type to deploy: the one given, else SCRATCH_2 for an ephemeral profile, else PERSISTENT_2."""
        if self.deployment_type is not None:
            return self.deployment_type
        return "SCRATCH_2" if ephemeral else "PERSISTENT_2"


class EfsConfig(StrictModel):
    """EFS: a shared, ReadWriteMany model cache."""

    uid: int = Field(default=1000, ge=0, le=4294967295, description="POSIX user of the access point. Default: 1000.")
    gid: int = Field(default=1000, ge=0, le=4294967295, description="POSIX group of the access point. Default: 1000.")
    path: str = Field(default="/model-cache", description="Root directory of the access point. Default: /model-cache.")
    transition_to_ia: IaTransition | None = Field(
        default=None, description="Move cold files to Infrequent Access after this long. Default: never."
    )
    backup: bool = Field(default=True, description="AWS Backup daily backups of the file system. Default: true.")

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not re.fullmatch(r"/[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*", v) or len(v) > 100:
            raise fail(f"'{v}' is not an access point root", "use an absolute directory such as /model-cache (not '/')")
        return v


class StorageConfig(StrictModel):
    """Model storage (FSx for Lustre, EFS). Empty: none."""

    fsx: FsxConfig | None = Field(
        default=None, description="FSx for Lustre file system. Default: none ('fsx: {}' for defaults)."
    )
    efs: EfsConfig | None = Field(default=None, description="EFS model cache. Default: none ('efs: {}' for defaults).")

    @property
    def enabled(self) -> bool:
        return self.fsx is not None or self.efs is not None


# ---- secrets ---------------------------------------------------------------------------------

_HF_TOKEN = re.compile(r"hf_[A-Za-z0-9]{20,}")
_NGC_KEY = re.compile(r"nvapi-[A-Za-z0-9_-]{20,}")
# Legacy NGC keys are base64 of '<26 alphanumerics>:<uuid>'.
_NGC_LEGACY = re.compile(r"[A-Za-z0-9]{26}:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_B64_RUN = re.compile(r"[A-Za-z0-9+/_-]{24,}={0,2}")
#: Keys a value hides under when someone tries to put one in the profile.
_VALUE_KEYS = frozenset({"value", "values", "secret_string", "secret_value", "token", "api_key", "key", "password"})


def looks_like_secret(text: str) -> bool:
    """True if ``text`` contains a Hugging Face token, an NGC API key, or base64 of either.

    Shared by the profile check and the synthesized-output scan, so both catch the same shapes.
    """
    if _HF_TOKEN.search(text) or _NGC_KEY.search(text) or _NGC_LEGACY.search(text):
        return True
    for run in _B64_RUN.findall(text):
        # A token inside a longer string is encoded at any of 3 byte alignments; decoding from
        # each of the 4 character offsets finds it whichever one it landed on.
        for start in range(4):
            chunk = run[start:].rstrip("=")
            chunk = chunk[: len(chunk) - len(chunk) % 4]
            if len(chunk) < 16:
                continue
            for decode in (base64.b64decode, base64.urlsafe_b64decode):
                try:
                    decoded = decode(chunk).decode("latin-1")
                except (binascii.Error, ValueError):
                    continue
                if _HF_TOKEN.search(decoded) or _NGC_KEY.search(decoded) or _NGC_LEGACY.search(decoded):
                    return True
    return False


def _redact(node: Any, path: str, found: list[str]) -> Any:
    """Replace every value-like entry under ``node`` by '<redacted>', recording where it was."""
    if isinstance(node, dict):
        for k in list(node):
            here = f"{path}.{k}" if path else str(k)
            if str(k).lower() in _VALUE_KEYS and node[k] not in (None, "", {}, []):
                found.append(here)
                node[k] = "<redacted>"
            else:
                node[k] = _redact(node[k], here, found)
        return node
    if isinstance(node, list):
        for i, item in enumerate(node):
            node[i] = _redact(item, f"{path}[{i}]", found)
        return node
    if isinstance(node, str) and looks_like_secret(node):
        found.append(path)
        return "<redacted>"
    return node


class SecretsConfig(StrictModel):
    """Secrets Manager entries synced into the cluster by External Secrets (on by default).

    Names only; the operator sets each value with ``aws secretsmanager put-secret-value``.
    """

    enabled: bool = Field(
        default=True,
        description="Create the secrets and sync them with External Secrets. Default: true (the in-cluster "
        "Grafana's admin login is synced the same way).",
    )
    names: tuple[str, ...] = Field(
        default=(HF_TOKEN_SECRET, "ngc-api-key"),
        description="Secret names; each is created as '<prefix>/<name>'. Default: huggingface-token, ngc-api-key.",
    )
    refresh_interval: str = Field(
        default="1h", description="How often External Secrets re-reads each secret (e.g. 15m, 1h). Default: 1h."
    )
    rotation_lambda_arn: str | None = Field(
        default=None, description="ARN of a rotation Lambda to attach to every secret. Default: no rotation."
    )
    rotation_days: int = Field(
        default=30, ge=1, le=1000, description="Days between rotations (with a rotation Lambda). Default: 30."
    )

    @model_validator(mode="before")
    @classmethod
    def _no_values(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        found: list[str] = []
        names = data.get("names")
        if isinstance(names, dict):
            # `names: {huggingface-token: hf_...}` -- a name -> value mapping.
            found += [f"names.{k}" for k, v in names.items() if v not in (None, "")]
            data["names"] = dict.fromkeys(names, "<redacted>")
        elif isinstance(names, list):
            for i, item in enumerate(names):
                if isinstance(item, dict):
                    found.append(f"names[{i}]")
                    names[i] = {k: ("<redacted>" if str(k).lower() != "name" else v) for k, v in item.items()}
        # The error echoes its input: redact in place first so no token reaches a terminal or log.
        _redact(data, "", found)
        if found:
            raise fail(f"a secret value is in the profile at {', '.join(sorted(set(found)))}", PUT_SECRET_VALUE)
        return data

    @field_validator("names")
    @classmethod
    def _names(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [n for n in v if not SECRET_NAME_PATTERN.match(n)]
        if bad:
            raise fail(
                f"{bad} are not valid Secrets Manager names",
                "use 1-512 ASCII letters, digits or / _ + = . @ - (no spaces), e.g. huggingface-token",
            )
        # Each is synced into a Kubernetes Secret of a derived name; two must not collide.
        k8s = [kubernetes_secret_name(n) for n in v]
        if len(set(k8s)) != len(k8s) or not all(k8s):
            raise fail(
                f"{list(v)} repeat a name, or map to the same Kubernetes Secret name ({k8s})",
                "list each secret once, with names that differ in more than case or punctuation",
            )
        return v

    @field_validator("refresh_interval")
    @classmethod
    def _refresh(cls, v: str) -> str:
        if not _DURATION.match(v):
            raise fail(
                f"'{v}' is not a refresh interval", "write a whole number of seconds, minutes or hours: 30s, 15m, 1h"
            )
        return v

    @field_validator("rotation_lambda_arn")
    @classmethod
    def _rotation(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(
            r"arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9_$-]+)?", v
        ):
            raise fail(f"'{v}' is not a Lambda function ARN", "use arn:aws:lambda:<region>:<account>:function:<name>")
        return v


def kubernetes_secret_name(secret_name: str) -> str:
    """The Kubernetes Secret a Secrets Manager name is synced into: 'team/hf_token' -> 'team-hf-token'."""
    return re.sub(r"[^a-z0-9-]", "-", secret_name.lower()).strip("-")[:253]
