"""``eks-llm-stack verify``: a live cluster checked against what its profile deploys.

Every Helm release of the synthesized templates at its pinned chart version (read from helm's own
release Secrets), the charts' CRDs serving the pinned API versions, the device plugins advertising
``nvidia.com/gpu`` (and ``vpc.amazonaws.com/efa``) on each pool's nodes, the DCGM exporter ready and
serving the GPU fields, and each model answering ``/health`` and one completion through its endpoint.

Read-only: GETs against the API server, a ``kubectl port-forward`` to each model's Service and one
completion per model. Exit codes: 0 every check passed (or was skipped: nothing to check yet), 1 a
check failed, 2 bad input (the profile), 4 the cluster could not be used (kubeconfig, network,
credentials).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..preflight import Status
from .checks import Forwarder, Row, check_crd, check_dcgm, check_model, check_pool, check_release
from .expect import Expectations, ExpectedRelease, assembly_templates, expectations, releases_of, synthesized_releases
from .kube import KubeAccessError, KubeApi, KubeTarget, load_kubeconfig

#: Exit code when the cluster cannot be used (as every ops command's AWS access failures).
EXIT_ACCESS = KubeAccessError.exit_code


@dataclass(frozen=True, kw_only=True)
class VerifyOptions:
    """``via`` — ``plan``: a model behind a load balancer is asked through it; ``service``: every model
    through its Service (default plan). ``timeout`` — seconds per request (default 10).
    ``completion_timeout`` — seconds for a completion (default 120). ``ingress_url`` — the base URL of a
    load balancer's host name (default ``https://<host>``: both kinds listen on 443 with TLS)."""

    via: str = "plan"
    timeout: float = 10.0
    completion_timeout: float = 120.0
    ingress_url: Callable[[str], str] = lambda host: f"https://{host}"


@dataclass(frozen=True)
class VerifyReport:
    profile: str
    context: str
    rows: tuple[Row, ...]

    @property
    def ok(self) -> bool:
        return not any(r.status is Status.FAIL for r in self.rows)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def failed(self) -> tuple[Row, ...]:
        return tuple(r for r in self.rows if r.status is Status.FAIL)

    def as_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "context": self.context,
            "ok": self.ok,
            "exit_code": self.exit_code,
            "checks": [r.as_dict() for r in self.rows],
        }


def run_verify(
    api: KubeApi,
    expect: Expectations,
    *,
    forward: Forwarder,
    options: VerifyOptions = VerifyOptions(),
    deploy_hint: str = "cdk deploy --all",
) -> VerifyReport:
    """Every check, in order; an unusable cluster raises :class:`KubeAccessError` at the first request."""
    rows: list[Row] = []
    rows += [check_release(api, r, deploy_hint) for r in expect.releases]
    rows += [check_crd(api, c, deploy_hint) for c in expect.crds]
    for pool in expect.pools:
        rows += check_pool(api, pool)
    if expect.dcgm is not None:
        rows += check_dcgm(api, expect.dcgm, options.timeout)
    for m in expect.models:
        rows += check_model(
            api,
            m,
            forward=forward,
            via=options.via,
            timeout=options.timeout,
            completion_timeout=options.completion_timeout,
            ingress_url=options.ingress_url,
        )
    return VerifyReport(expect.profile, api.target.context, tuple(rows))


def render(report: VerifyReport, width: int | None = None) -> str:
    """The report as a table (check, target, status, detail, fix) and a closing verdict line."""
    from rich.console import Console
    from rich.table import Table

    table = Table(show_lines=False, expand=False)
    for column in ("check", "target", "status", "detail", "fix"):
        table.add_column(column, overflow="fold")
    for r in report.rows:
        table.add_row(r.check, r.target, r.status.value, r.detail, r.fix)
    console = Console(width=width or 200, record=True, force_terminal=False, color_system=None)
    with console.capture() as capture:
        console.print(table)
    failed = len(report.failed())
    verdict = (
        f"verify passed: {len(report.rows)} checks on context {report.context}"
        if report.ok
        else f"verify FAILED: {failed} of {len(report.rows)} checks failed on context {report.context}"
    )
    return capture.get() + verdict + "\n"


def to_json(report: VerifyReport) -> str:
    return json.dumps(report.as_dict(), indent=2) + "\n"


__all__ = [
    "EXIT_ACCESS",
    "Expectations",
    "ExpectedRelease",
    "KubeAccessError",
    "KubeApi",
    "KubeTarget",
    "Row",
    "VerifyOptions",
    "VerifyReport",
    "assembly_templates",
    "expectations",
    "load_kubeconfig",
    "releases_of",
    "render",
    "run_verify",
    "synthesized_releases",
    "to_json",
]
