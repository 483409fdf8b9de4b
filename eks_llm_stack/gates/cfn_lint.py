"""Quality gates over a synthesized platform, usable from any repository's test suite.

- :func:`lint_template` — cfn-lint, every finding (errors *and* warnings) except the rules in
  :data:`CFN_LINT_EXCLUSIONS`, each excluded with its reason;
- :func:`nag_findings` — cdk-nag AwsSolutions findings left unacknowledged in a cloud assembly;
- :func:`embedded_manifests` — the Kubernetes manifests inside ``Custom::AWSCDK-EKS-KubernetesResource``
  resources, ready for :func:`eks_llm_stack.gates.validate_manifests`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..charts.render import placeholders

#: cfn-lint rules we do not apply, and why. Keep this list short; each entry needs a reason.
CFN_LINT_EXCLUSIONS: dict[str, str] = {
    "W3005": "aws-cdk-lib's generated custom-resource providers (kubectl, default-SG restriction) declare "
    "DependsOn next to a GetAtt of the same role; redundant but harmless, and not code we write.",
}

#: Regions templates are linted for when the profile names none.
LINT_REGIONS = ("us-east-1", "us-west-2", "eu-west-1")


@dataclass(frozen=True)
class Finding:
    """One gate finding: where, which rule, what."""

    where: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: [{self.rule}] {self.message}"


def lint_template(template: Mapping[str, Any], name: str, regions: tuple[str, ...] = LINT_REGIONS) -> list[Finding]:
    """cfn-lint findings of every level for one template (informational ones excluded)."""
    from cfnlint.api import ManualArgs, lint

    matches = lint(
        json.dumps(template),
        config=ManualArgs(regions=list(regions), ignore_checks=list(CFN_LINT_EXCLUSIONS)),
    )
    out = []
    for m in matches:
        rule_id = m.rule.id
        if rule_id.startswith("I"):
            continue
        path = "/".join(str(p) for p in (getattr(m, "path", None) or [])) or f"line {m.linenumber}"
        out.append(Finding(f"{name}:{path}", rule_id, m.message))
    return out


def nag_findings(assembly: Any) -> list[Finding]:
    """cdk-nag findings (errors and warnings) recorded in a synthesized cloud assembly.

    Acknowledged findings are not recorded by cdk-nag as errors/warnings, so whatever is
    left is a finding nobody gave a reason for.
    """
    out: list[Finding] = []
    for stack in assembly.stacks_recursively:
        for msg in stack.messages:
            level = str(msg.level).lower()
            text = str(msg.entry.data)
            if ("error" in level or "warn" in level) and "AwsSolutions-" in text:
                rule = text.split(":", 1)[0].strip()
                out.append(Finding(f"{stack.stack_name}{msg.id}", rule, text))
    return out


def embedded_manifests(template: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(logical id, manifest)`` for every Kubernetes manifest applied by the template.

    CloudFormation intrinsics inside a manifest become ``${LogicalId.Attr}`` placeholders so the
    JSON parses; they stand where a real value goes at deploy time.
    """
    for logical_id, res in (template.get("Resources") or {}).items():
        if res.get("Type") != "Custom::AWSCDK-EKS-KubernetesResource":
            continue
        raw = res.get("Properties", {}).get("Manifest")
        text = raw if isinstance(raw, str) else placeholders(raw)
        for doc in json.loads(text):
            yield logical_id, doc
