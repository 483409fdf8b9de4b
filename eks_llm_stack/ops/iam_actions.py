"""IAM actions checked against a reference list: cfn-lint's IAM service/action data, not our belief.

cfn-lint ships the AWS service authorization reference as package data
(``cfnlint/data/AdditionalSpecs/Policies.json``: service prefix -> its actions, lower-cased), the
same data its own IAM rules use. Every action a hand-written policy names — the CI account
policies in ``docs/ci-ephemeral-clusters.md`` — must exist there: a known service prefix, and a name
(or a ``*``/``?`` pattern) that matches at least one of the service's actions. IAM accepts a
policy with an unknown action and it then grants nothing, so a typo fails silently in AWS;
here it fails the test suite.

Run it on a Markdown or JSON file: ``python -m eks_llm_stack.ops.iam_actions docs/ci-ephemeral-clusters.md``
(exit 1 and one line per problem).
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ..errors import EksLlmStackError


class ReferenceMissing(EksLlmStackError):
    """cfn-lint (the reference IAM data) is not installed."""


@cache
def reference_actions() -> Mapping[str, frozenset[str]]:
    """Service prefix -> its actions (lower case), from cfn-lint's package data."""
    try:
        from importlib.resources import files

        data = (files("cfnlint.data.AdditionalSpecs") / "Policies.json").read_text()
    except ModuleNotFoundError:
        raise ReferenceMissing(
            "cfn-lint is not installed: it carries the IAM action reference -- fix: pip install 'eks-llm-stack[gates]'"
        ) from None
    return {
        svc.lower(): frozenset(a.lower() for a in spec.get("Actions", {})) for svc, spec in json.loads(data).items()
    }


_ACTION = re.compile(r"^([A-Za-z0-9-]+):([A-Za-z0-9*?]+)$")


def action_problem(action: str) -> str | None:
    """Why ``action`` names nothing IAM knows (None when it names at least one real action)."""
    ref = reference_actions()
    if action == "*":
        return None
    match = _ACTION.match(action)
    if match is None:
        return f"'{action}' is not an IAM action (service:Action, letters, digits and '-' in the service prefix)"
    service, name = match.group(1).lower(), match.group(2).lower()
    if service not in ref:
        close = difflib.get_close_matches(service, list(ref), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"'{action}': no AWS service has the prefix '{service}'{hint}"
    if any(c in name for c in "*?"):
        if not fnmatch.filter(ref[service], name):
            return f"'{action}' matches no {service} action"
        return None
    if name not in ref[service]:
        close = difflib.get_close_matches(name, list(ref[service]), n=1)
        hint = f" (did you mean '{service}:{close[0]}'?)" if close else ""
        return f"'{action}': {service} has no action '{match.group(2)}'{hint}"
    return None


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def statement_actions(policy: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(statement label, action)`` for every ``Action``/``NotAction`` of a policy document."""
    statements = policy.get("Statement") or []
    statements = statements if isinstance(statements, list) else [statements]
    out = []
    for i, st in enumerate(statements):
        label = str(st.get("Sid") or f"Statement[{i}]")
        out += [(label, a) for key in ("Action", "NotAction") for a in _as_list(st.get(key))]
    return out


@dataclass(frozen=True)
class PolicyProblem:
    where: str
    statement: str
    message: str

    def render(self) -> str:
        return f"{self.where} {self.statement}: {self.message} -- fix: use an action of the AWS service authorization reference"


def policy_problems(policy: Mapping[str, Any], where: str) -> list[PolicyProblem]:
    """Every action of ``policy`` that names nothing IAM knows."""
    return [
        PolicyProblem(where, label, problem)
        for label, action in statement_actions(policy)
        if (problem := action_problem(action)) is not None
    ]


def markdown_policies(text: str) -> list[tuple[int, dict[str, Any]]]:
    """``(line, document)`` of every ```` ```json ```` block of ``text`` that is a policy (has a Statement)."""
    out = []
    for match in re.finditer(r"^[ \t]*```json[ \t]*\n(.*?)^[ \t]*```", text, re.M | re.S):
        doc = json.loads(match.group(1))
        if isinstance(doc, dict) and "Statement" in doc:
            out.append((text.count("\n", 0, match.start()) + 1, doc))
    return out


def allows(policy: Mapping[str, Any], action: str) -> bool:
    """Whether an unconditional Allow statement of ``policy`` names ``action`` (its patterns matched as IAM does)."""
    statements = policy.get("Statement") or []
    for st in statements if isinstance(statements, list) else [statements]:
        if st.get("Effect") != "Allow" or st.get("Condition") or "NotAction" in st:
            continue
        if any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in _as_list(st.get("Action"))):
            return True
    return False


def file_problems(path: Path) -> list[str]:
    """Every problem of the policies in a Markdown (```json blocks) or JSON file."""
    text = path.read_text()
    docs = [(1, json.loads(text))] if path.suffix == ".json" else markdown_policies(text)
    return [p.render() for line, doc in docs for p in policy_problems(doc, f"{path}:{line}")]


def main(argv: Sequence[str] | None = None) -> int:
    paths: Iterable[str] = argv if argv is not None else sys.argv[1:]
    problems = [line for p in paths for line in file_problems(Path(p))]
    for line in problems:
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
