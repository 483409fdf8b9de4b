"""IAM contract: each controller's synthesized policy against the controller's own reference policy.

Every action of the reference policy must be granted (narrower resources and extra conditions are
fine: this library scopes by ARN and tag where the reference uses ``*``), or be listed in
:data:`EXCLUSIONS` with the feature that leaving it out turns off. Where a reference statement
enumerates the services a role may be passed to or created for (``iam:PassedToService``,
``iam:AWSServiceName``), every value it names must be allowed too (the China partition's
``ec2.amazonaws.com.cn``, for instance). Karpenter's EventBridge rules must equal the reference set.

References (``third_party/``, provenance in its README):

* Karpenter 1.14.1 — ``karpenter-1.14.1/cloudformation.yaml`` (every managed policy, and the rules);
* AWS Load Balancer Controller 3.4.2 — ``aws-load-balancer-controller-3.4.2/iam_policy.json``;
* EFS CSI driver v3.4.1 — ``aws-efs-csi-driver-v3.4.1/iam-policy-example.json``;
* FSx CSI driver v1.9.0 — ``aws-fsx-csi-driver-v1.9.0/iam-policy-from-install-md.json``;
* External Secrets v2.9.0 — no policy file upstream: :data:`EXTERNAL_SECRETS_DOCUMENTED_ACTIONS`, the
  read policy of its Secrets Manager provider page (``docs/provider/aws-secrets-manager.md``).

Policies are found in a template through the controller's EKS Pod Identity association (a
``AWS::EKS::PodIdentityAssociation`` or an add-on's ``PodIdentityAssociations``) by service account.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from ..charts.render import placeholders

THIRD_PARTY = Path(__file__).resolve().parents[1] / "third_party"

KARPENTER = "karpenter"
LOAD_BALANCER_CONTROLLER = "aws-load-balancer-controller"
EFS_CSI = "aws-efs-csi-driver"
FSX_CSI = "aws-fsx-csi-driver"
EXTERNAL_SECRETS = "external-secrets"

#: Service account of each controller (as the constructs name them by default).
SERVICE_ACCOUNTS: Mapping[str, str] = {
    KARPENTER: "karpenter",
    LOAD_BALANCER_CONTROLLER: "aws-load-balancer-controller",
    EFS_CSI: "efs-csi-controller-sa",
    FSX_CSI: "fsx-csi-controller-sa",
    EXTERNAL_SECRETS: "external-secrets",
}

#: External Secrets publishes no policy file; its Secrets Manager provider page (v2.9.0,
#: external-secrets/external-secrets ``docs/provider/aws-secrets-manager.md`` @ cc5bfbc, "IAM Policy")
#: documents these actions for reading secrets.
EXTERNAL_SECRETS_DOCUMENTED_ACTIONS = (
    "secretsmanager:ListSecrets",
    "secretsmanager:BatchGetSecretValue",
    "secretsmanager:GetResourcePolicy",
    "secretsmanager:GetSecretValue",
    "secretsmanager:DescribeSecret",
    "secretsmanager:ListSecretVersionIds",
)

#: Reference actions deliberately not granted: controller -> action -> the feature it turns off.
EXCLUSIONS: Mapping[str, Mapping[str, str]] = {
    EFS_CSI: {
        "s3files:ListAccessPoints": "Amazon S3 Files volumes (the driver's s3files mode); the model cache is EFS",
        "s3files:ListFileSystems": "Amazon S3 Files volumes (the driver's s3files mode); the model cache is EFS",
        "s3files:CreateAccessPoint": "dynamic provisioning on Amazon S3 Files; the model cache is EFS",
        "s3files:TagResource": "dynamic provisioning on Amazon S3 Files; the model cache is EFS",
        "s3files:DeleteAccessPoint": "dynamic provisioning on Amazon S3 Files; the model cache is EFS",
    },
    FSX_CSI: {
        "fsx:CreateFileSystem": "dynamic provisioning of new FSx for Lustre file systems (the model file system "
        "is created by CloudFormation and statically provisioned)",
        "fsx:DeleteFileSystem": "deleting dynamically provisioned file systems (none are provisioned)",
        "fsx:TagResource": "tagging dynamically provisioned file systems (none are provisioned)",
        "s3:ListBucket": "S3 data repositories on dynamically provisioned file systems (the model file system's "
        "data repository is set by CloudFormation)",
        "iam:CreateServiceLinkedRole": "creating FSx's service-linked roles on first dynamic provisioning "
        "(CloudFormation creates the file system, and its roles, first)",
        "iam:AttachRolePolicy": "the S3 data repository service-linked role of dynamic provisioning",
        "iam:PutRolePolicy": "the S3 data repository service-linked role of dynamic provisioning",
    },
    EXTERNAL_SECRETS: {
        "secretsmanager:ListSecrets": "dataFrom.find (looking secrets up by name pattern or tag); every "
        "ExternalSecret of this library names its secret",
        "secretsmanager:BatchGetSecretValue": "dataFrom.find with a path or tags (batch retrieval)",
        "secretsmanager:GetResourcePolicy": "PushSecret's resourcePolicy metadata (the only caller in v2.9.0); "
        "no PushSecret is used",
        "secretsmanager:ListSecretVersionIds": "nothing in v2.9.0: the provider never calls it (versions are "
        "read with GetSecretValue's VersionId/VersionStage)",
    },
}

#: Condition keys whose values enumerate AWS services; each one the reference names must be allowed.
SERVICE_CONDITION_KEYS = ("iam:PassedToService", "iam:AWSServiceName")


@dataclass(frozen=True)
class Reference:
    """A controller's reference policy: where it comes from, and its Allow statements."""

    controller: str
    source: str
    statements: tuple[dict[str, Any], ...]

    @property
    def actions(self) -> frozenset[str]:
        return frozenset(a for s in self.statements for a in _as_list(s.get("Action")))


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation YAML: short-form intrinsics (``!Sub``, ``!GetAtt``...) become their argument."""


def _intrinsic(loader: yaml.SafeLoader, _suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]


_CfnLoader.add_multi_constructor("!", _intrinsic)


@cache
def karpenter_reference() -> tuple[Reference, frozenset[tuple[str, str]]]:
    """Karpenter's controller policy statements and its EventBridge rules ``(source, detail-type)``."""
    path = THIRD_PARTY / "karpenter-1.14.1" / "cloudformation.yaml"
    doc = yaml.load(path.read_text(), Loader=_CfnLoader)
    statements: list[dict[str, Any]] = []
    rules: set[tuple[str, str]] = set()
    for resource in doc["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::ManagedPolicy":
            policy = props["PolicyDocument"]
            policy = json.loads(policy) if isinstance(policy, str) else policy
            statements += [s for s in policy["Statement"] if s.get("Effect") == "Allow"]
        elif resource["Type"] == "AWS::Events::Rule":
            pattern = props["EventPattern"]
            rules.update((src, dt) for src in pattern["source"] for dt in pattern["detail-type"])
    return Reference(KARPENTER, str(path.relative_to(THIRD_PARTY.parent)), tuple(statements)), frozenset(rules)


def _json_reference(controller: str, relative: str) -> Reference:
    path = THIRD_PARTY / relative
    policy = json.loads(path.read_text())
    statements = tuple(s for s in policy["Statement"] if s.get("Effect") == "Allow")
    return Reference(controller, str(path.relative_to(THIRD_PARTY.parent)), statements)


@cache
def references() -> dict[str, Reference]:
    """Every controller's reference policy."""
    docs = "external-secrets/external-secrets docs/provider/aws-secrets-manager.md @ v2.9.0"
    return {
        KARPENTER: karpenter_reference()[0],
        LOAD_BALANCER_CONTROLLER: _json_reference(
            LOAD_BALANCER_CONTROLLER, "aws-load-balancer-controller-3.4.2/iam_policy.json"
        ),
        EFS_CSI: _json_reference(EFS_CSI, "aws-efs-csi-driver-v3.4.1/iam-policy-example.json"),
        FSX_CSI: _json_reference(FSX_CSI, "aws-fsx-csi-driver-v1.9.0/iam-policy-from-install-md.json"),
        EXTERNAL_SECRETS: Reference(
            EXTERNAL_SECRETS, docs, ({"Effect": "Allow", "Action": list(EXTERNAL_SECRETS_DOCUMENTED_ACTIONS)},)
        ),
    }


def _ref_target(value: Any) -> str | None:
    """Logical id of ``{"Fn::GetAtt": [id, "Arn"]}`` or ``{"Ref": id}``."""
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return str(value["Fn::GetAtt"][0])
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    return None


def controller_statements(template: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """controller -> the Allow statements of every policy on its Pod Identity role (intrinsics as
    ``${...}`` placeholders). Controllers absent from the template are absent from the result."""
    resources: Mapping[str, Any] = template.get("Resources") or {}
    by_account = {sa: controller for controller, sa in SERVICE_ACCOUNTS.items()}
    roles: dict[str, str] = {}
    for resource in resources.values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::EKS::PodIdentityAssociation":
            pairs = [(props.get("ServiceAccount"), props.get("RoleArn"))]
        elif resource["Type"] == "AWS::EKS::Addon":
            pairs = [(a.get("ServiceAccount"), a.get("RoleArn")) for a in props.get("PodIdentityAssociations") or []]
        else:
            continue
        for account, arn in pairs:
            role = _ref_target(arn)
            if account in by_account and role is not None:
                roles[role] = by_account[account]
    # A role that only a controller's role may assume (External Secrets' per-store readers) acts
    # for that controller: its permissions count as the controller's.
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::IAM::Role" or logical_id in roles:
            continue
        trust = resource.get("Properties", {}).get("AssumeRolePolicyDocument", {}).get("Statement") or []
        principals = [_ref_target((st.get("Principal") or {}).get("AWS")) for st in trust]
        owners = {roles[p] for p in principals if p in roles}
        if len(owners) == 1 and len(principals) == len(trust):
            roles[logical_id] = owners.pop()
    found: dict[str, list[dict[str, Any]]] = {}
    for logical_id, resource in resources.items():
        props = resource.get("Properties", {})
        documents: list[Any] = []
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            for role in props.get("Roles") or []:
                if _ref_target(role) in roles:
                    documents.append((roles[_ref_target(role)], props["PolicyDocument"]))  # type: ignore[index]
        elif resource["Type"] == "AWS::IAM::Role" and logical_id in roles:
            documents += [(roles[logical_id], p["PolicyDocument"]) for p in props.get("Policies") or []]
        for controller, document in documents:
            statements = placeholders(document)["Statement"]
            found.setdefault(controller, []).extend(s for s in statements if s.get("Effect") == "Allow")
    return found


def _grants(statement: Mapping[str, Any], action: str) -> bool:
    return any(fnmatch.fnmatchcase(action.lower(), str(a).lower()) for a in _as_list(statement.get("Action")))


def _resource_types(statement: Mapping[str, Any]) -> set[str] | None:
    """``service:type`` of each resource ARN (``elasticloadbalancing:listener``); None when ``*`` is granted."""
    types: set[str] = set()
    for resource in _as_list(statement.get("Resource")):
        text = re.sub(r"\$\{[^}]*\}", "X", str(resource))
        if text == "*":
            return None
        parts = text.split(":", 5)
        if len(parts) < 6:
            return None  # not an ARN we can read: do not claim it is narrower
        types.add(f"{parts[2]}:{re.split(r'[/:]', parts[5])[0]}")
    return types


def _condition_values(statement: Mapping[str, Any], key: str) -> set[str] | None:
    for operator in (statement.get("Condition") or {}).values():
        if key in operator:
            return {str(v) for v in _as_list(operator[key])}
    return None


def check_policy(
    controller: str,
    statements: Iterable[Mapping[str, Any]],
    *,
    reference: Reference | None = None,
    exclusions: Mapping[str, str] | None = None,
) -> list[str]:
    """Every way ``statements`` fall short of the controller's reference policy."""
    reference = reference or references()[controller]
    exclusions = EXCLUSIONS.get(controller, {}) if exclusions is None else exclusions
    ours = list(statements)
    problems: list[str] = []
    for action in sorted(reference.actions):
        granted = [s for s in ours if _grants(s, action)]
        if not granted and action not in exclusions:
            problems.append(
                f"{controller}: {action} (in {reference.source}) is not granted -- fix: grant it, or list it in "
                "EXCLUSIONS with the feature its absence turns off"
            )
        elif granted and action in exclusions:
            problems.append(
                f"{controller}: {action} is granted but listed in EXCLUSIONS ({exclusions[action]}) -- fix: "
                "remove the exclusion"
            )
    for ref in reference.statements:
        wanted_types = _resource_types(ref) or set()  # nothing to compare when the reference grants '*'
        for action in _as_list(ref.get("Action")) if wanted_types else []:
            granted = [s for s in ours if _grants(s, action)]
            if not granted:
                continue  # reported above
            have: set[str] = set()
            for s in granted:
                types = _resource_types(s)
                if types is None:
                    have = set(wanted_types)
                    break
                have |= types
            for missing in sorted(wanted_types - have):
                problems.append(
                    f"{controller}: {action} is not granted on {missing} resources (the reference grants it on "
                    f"{', '.join(_as_list(ref.get('Resource')))}) -- fix: add those ARNs, scoped as narrowly as "
                    "the controller allows"
                )
        for key in SERVICE_CONDITION_KEYS:
            wanted = _condition_values(ref, key)
            if wanted is None:
                continue
            for action in _as_list(ref.get("Action")):
                for s in (s for s in ours if _grants(s, action)):
                    allowed = _condition_values(s, key)
                    if allowed is not None and not wanted <= allowed:
                        problems.append(
                            f"{controller}: {action} allows {key} {sorted(allowed)}, the reference "
                            f"{sorted(wanted)} -- fix: add {sorted(wanted - allowed)}"
                        )
    return problems


def event_rules(template: Mapping[str, Any]) -> set[tuple[str, str]]:
    """``(source, detail-type)`` of every EventBridge rule that feeds Karpenter's interruption queue (the
    queue its controller policy may receive from)."""
    resources: Mapping[str, Any] = template.get("Resources") or {}
    queues = {
        _ref_target(r)
        for s in controller_statements_raw(template, KARPENTER)
        if _grants(s, "sqs:ReceiveMessage")
        for r in _as_list(s.get("Resource"))
    }
    found: set[tuple[str, str]] = set()
    for resource in resources.values():
        if resource["Type"] != "AWS::Events::Rule":
            continue
        props = resource["Properties"]
        if not any(_ref_target(t.get("Arn")) in queues for t in props.get("Targets") or []):
            continue
        pattern = props.get("EventPattern") or {}
        found.update((src, dt) for src in pattern.get("source", []) for dt in pattern.get("detail-type", []))
    return found


def controller_statements_raw(template: Mapping[str, Any], controller: str) -> list[dict[str, Any]]:
    """Like :func:`controller_statements` for one controller, with intrinsics kept (to follow references)."""
    resources: Mapping[str, Any] = template.get("Resources") or {}
    account = SERVICE_ACCOUNTS[controller]
    roles = {
        _ref_target(r["Properties"].get("RoleArn"))
        for r in resources.values()
        if r["Type"] == "AWS::EKS::PodIdentityAssociation" and r["Properties"].get("ServiceAccount") == account
    }
    out: list[dict[str, Any]] = []
    for r in resources.values():
        if r["Type"] == "AWS::IAM::Policy" and any(_ref_target(x) in roles for x in r["Properties"].get("Roles", [])):
            out += r["Properties"]["PolicyDocument"]["Statement"]
    return out


def check_event_rules(template: Mapping[str, Any]) -> list[str]:
    """Karpenter's interruption rules must be exactly the reference set."""
    wanted = karpenter_reference()[1]
    have = event_rules(template)
    problems = [
        f"karpenter: no EventBridge rule for {src} '{dt}' (in karpenter-1.14.1/cloudformation.yaml) -- fix: add it "
        "to INTERRUPTION_EVENTS"
        for src, dt in sorted(wanted - have)
    ]
    problems += [
        f"karpenter: EventBridge rule for {src} '{dt}' is not in the reference -- fix: remove it"
        for src, dt in sorted(have - wanted)
    ]
    return problems


def check_templates(templates: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Every IAM contract problem of every controller found in these templates."""
    problems: list[str] = []
    for name, template in sorted(templates.items()):
        for controller, statements in sorted(controller_statements(template).items()):
            problems += [f"{name}: {p}" for p in check_policy(controller, statements)]
        if KARPENTER in controller_statements(template):
            problems += [f"{name}: {p}" for p in check_event_rules(template)]
    return problems
