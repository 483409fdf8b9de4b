"""``ModelSecrets``: Secrets Manager entries for model-hub credentials (Hugging Face token, NGC API key).

The secrets are created *empty*: no value in the template, none generated. A template is
stored by CloudFormation and readable by anyone with ``cloudformation:GetTemplate``; the
operator sets each value once with ``aws secretsmanager put-secret-value`` (see
docs/storage-and-secrets.md), and External Secrets syncs it into the cluster.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as sm
from constructs import Construct

from ..config.data import SECRET_NAME_PATTERN, kubernetes_secret_name
from ..conventions import HF_TOKEN_SECRET, secret_name
from ..errors import collecting
from ..gates.nag import acknowledge

#: Default secret names (the profile can add more).
HUGGINGFACE_TOKEN = HF_TOKEN_SECRET
NGC_API_KEY = "ngc-api-key"


@dataclass(frozen=True, kw_only=True)
class ModelSecretsProps:
    """The secrets to create.

    ``names`` — one secret per name, created as ``<name_prefix>/<name>`` (default:
    huggingface-token, ngc-api-key). ``name_prefix`` — keeps two platforms in one account apart
    (default ``llm``). ``removal_policy`` — of the secrets and a new key (default RETAIN).
    ``encryption_key`` — customer-managed KMS key (default: a new key with rotation).
    ``rotation_lambda`` — attach this rotation function to every secret (default: no rotation;
    these are third-party tokens rotated by their issuer). ``rotation_days`` — rotation period
    (default 30).
    """

    names: tuple[str, ...] = (HUGGINGFACE_TOKEN, NGC_API_KEY)
    name_prefix: str = "llm"
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN
    encryption_key: kms.IKey | None = None
    rotation_lambda: lambda_.IFunction | None = None
    rotation_days: int = 30

    def __post_init__(self) -> None:
        with collecting("ModelSecretsProps") as p:
            p.check(
                bool(self.names),
                "names",
                self.names,
                "is empty",
                "name at least one secret, e.g. ('huggingface-token',)",
            )
            for n in self.names:
                p.check(
                    bool(SECRET_NAME_PATTERN.match(secret_name(self.name_prefix, n))),
                    "names",
                    n,
                    "is not a valid Secrets Manager name",
                    "use ASCII letters, digits or / _ + = . @ - (no spaces)",
                )
            p.check(
                len(set(self.names)) == len(self.names), "names", self.names, "repeats a name", "list each secret once"
            )
            p.check(
                bool(re.fullmatch(r"[A-Za-z0-9_+=.@-]{1,64}", self.name_prefix)),
                "name_prefix",
                self.name_prefix,
                "is not usable in a secret name",
                "use letters, digits or _ + = . @ - (e.g. the profile prefix)",
            )


def construct_id(name: str) -> str:
    """The construct id of a secret: its name, with '/' (a path separator in construct ids) as '--'.

    Part of the API: changing it changes the logical id and *replaces* the secret.
    """
    return name.replace("/", "--")


class ModelSecrets(Construct):
    """Empty, KMS-encrypted Secrets Manager secrets for model-hub credentials.

    Attributes: ``key``, ``secrets`` (name -> ``Secret``), ``secret_names`` (name -> physical name), ``secret_arns``.
    """

    def __init__(self, scope: Construct, id: str, *, props: ModelSecretsProps) -> None:
        super().__init__(scope, id)
        self.props = props
        self.key: kms.IKey = props.encryption_key or kms.Key(
            self,
            "Key",
            description="Encryption of the model-hub credentials in Secrets Manager",
            enable_key_rotation=True,
            removal_policy=props.removal_policy,
        )
        self.secrets: dict[str, sm.Secret] = {}
        #: name -> the physical Secrets Manager name (what put-secret-value and External Secrets use).
        self.secret_names: dict[str, str] = {}
        for name in props.names:
            secret = sm.Secret(
                self,
                construct_id(name),
                secret_name=secret_name(props.name_prefix, name),
                description=f"{name}: set with 'aws secretsmanager put-secret-value'; synced by External Secrets",
                encryption_key=self.key,
                removal_policy=props.removal_policy,
            )
            # The L2 generates a random value when given none; a generated token is useless and would
            # be mistaken for a real one. CloudFormation creates a secret with no value when both
            # SecretString and GenerateSecretString are absent.
            secret.node.default_child.add_property_deletion_override("GenerateSecretString")  # type: ignore[union-attr]
            if props.rotation_lambda is not None:
                secret.add_rotation_schedule(
                    "Rotation",
                    rotation_lambda=props.rotation_lambda,
                    automatically_after=Duration.days(props.rotation_days),
                )
            else:
                acknowledge(
                    secret,
                    "AwsSolutions-SMG4",
                    "A third-party API token (Hugging Face / NGC) is rotated by its issuer, then set with "
                    "put-secret-value; External Secrets' refresh interval carries it to pods. A rotation Lambda "
                    "hook is available through rotation_lambda.",
                )
            self.secrets[name] = secret
            self.secret_names[name] = secret_name(props.name_prefix, name)

    @property
    def secret_arns(self) -> tuple[str, ...]:
        return tuple(s.secret_arn for s in self.secrets.values())

    def kubernetes_secret_names(self) -> Mapping[str, str]:
        """Secrets Manager name (without prefix) -> the Kubernetes Secret it is synced into."""
        return {name: kubernetes_secret_name(name) for name in self.secrets}

    def grant_read(self, grantee: iam.IGrantable) -> None:
        """GetSecretValue/DescribeSecret on exactly these secrets, and Decrypt on their key."""
        for secret in self.secrets.values():
            secret.grant_read(grantee)


#: Secrets Manager name of a model's API key, under the profile prefix: ``<prefix>/api-key/<model>``.
API_KEY_PATH = "api-key"
#: Key of the value in the synced Kubernetes Secret (and the file name in the pod).
API_KEY_FILE = "api-key"


def api_key_secret_name(prefix: str, model: str) -> str:
    """The Secrets Manager name of ``model``'s API key."""
    return secret_name(prefix, f"{API_KEY_PATH}/{model}")


def api_key_kubernetes_secret(model: str) -> str:
    """The Kubernetes Secret (serving namespace) the key of ``model`` is synced into."""
    return f"{model}-api-key"


@dataclass(frozen=True, kw_only=True)
class ModelApiKeysProps:
    """One generated API key per model.

    ``models`` — model names (required; may be empty: no keys). ``name_prefix`` — as for
    :class:`ModelSecretsProps` (default ``llm``). ``encryption_key`` — KMS key (required: the
    model-hub secrets' key). ``removal_policy`` — default RETAIN (clients hold the key).
    """

    models: tuple[str, ...]
    encryption_key: kms.IKey
    name_prefix: str = "llm"
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN

    def __post_init__(self) -> None:
        with collecting("ModelApiKeysProps") as p:
            p.check(
                len(set(self.models)) == len(self.models),
                "models",
                self.models,
                "repeats a name",
                "list each model once",
            )
            for m in self.models:
                p.check(
                    bool(SECRET_NAME_PATTERN.match(api_key_secret_name(self.name_prefix, m))),
                    "models",
                    m,
                    "is not usable in a secret name",
                    "use the model's DNS-label name",
                )


class ModelApiKeys(Construct):
    """A Secrets Manager secret per model holding its API key, generated by Secrets Manager at deploy
    time (never in the template), KMS-encrypted, synced by External Secrets into the serving namespace.

    Rotate with ``aws secretsmanager put-secret-value`` (one key per line; several lines are all
    accepted, so a rotation can overlap): External Secrets carries the change to the pods, whose
    API-key middleware re-reads the file — no redeploy, no restart.
    Attributes: ``secrets`` (model -> ``Secret``), ``secret_names`` (model -> physical name).
    """

    def __init__(self, scope: Construct, id: str, *, props: ModelApiKeysProps) -> None:
        super().__init__(scope, id)
        self.props = props
        self.secrets: dict[str, sm.Secret] = {}
        self.secret_names: dict[str, str] = {}
        for model in props.models:
            name = api_key_secret_name(props.name_prefix, model)
            secret = sm.Secret(
                self,
                construct_id(model),
                secret_name=name,
                description=f"API key of model {model} (generated); synced into the serving namespace by External Secrets",
                encryption_key=props.encryption_key,
                generate_secret_string=sm.SecretStringGenerator(exclude_punctuation=True, password_length=48),
                removal_policy=props.removal_policy,
            )
            acknowledge(
                secret,
                "AwsSolutions-SMG4",
                "A bearer key shared with the model's clients: rotated by the owner with put-secret-value (several "
                "lines overlap old and new); External Secrets and the pods' middleware pick it up without a restart.",
            )
            self.secrets[model] = secret
            self.secret_names[model] = name
