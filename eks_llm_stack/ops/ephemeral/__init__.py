"""Ephemeral clusters: ``up``, ``smoke``, ``down``, ``list`` and ``reap``, one module per verb.

An ephemeral cluster is the set of CloudFormation stacks tagged

* ``eks-llm-stack:ephemeral=true``
* ``eks-llm-stack:name=<name>``
* ``eks-llm-stack:expires-at=<UTC ISO-8601>``

and everything those stacks, the cluster's controllers and Karpenter created. ``down`` and
``reap`` find what to delete by those tags only: a resource that lacks
``eks-llm-stack:ephemeral=true`` is never deleted, whatever its name, and a resource that only
carries the cluster's Kubernetes tags (``kubernetes.io/cluster/<cluster>``, ...) is *reported*
for a person to look at, never deleted. Deletion is idempotent: every step first looks at what
is there, so a second run, or a run after a half-finished one, picks up where the last stopped.

Modules: :mod:`.names` (tags, names, times), :mod:`.clusters` (finding them), :mod:`.runner`
(external commands, timeouts), :mod:`.kubeconfig`, and one per verb: :mod:`.up`,
:mod:`.smoke`, :mod:`.down`, :mod:`.reap`, :mod:`.listing`. The names below are the public
interface and stay importable from ``eks_llm_stack.ops.ephemeral``.
"""

from __future__ import annotations

from .clusters import (
    EphemeralCluster,
    StackRef,
    ephemeral_stacks,
    find_cluster,
    find_clusters,
    ignored_stacks,
    ownership_problem,
)
from .down import DownReport, Leftover, Sweeper, down, recheck
from .kubeconfig import kubeconfig_yaml, write_kubeconfig
from .listing import list_rows, render_rows
from .names import (
    CLUSTER_TAGS,
    STACK_ORDER,
    TAG_DEPLOYMENT_ID,
    TAG_EPHEMERAL,
    TAG_EXPIRES,
    TAG_NAME,
    EphemeralError,
    check_name,
    cluster_name_for,
    cluster_tagged,
    ephemeral_tags,
    iso,
    new_deployment_id,
    new_name,
    owned_by,
    parse_iso,
    parse_ttl,
    stack_names_for,
)
from .reap import ReapReport, reap
from .runner import CommandResult, Runner, SubprocessRunner, Timeouts, cdk_command
from .smoke import BenchHarness, bench_argv, bench_via_cli, smoke, smoke_verdict
from .up import UpResult, check_name_is_free, deploy_argv, first_model, model_ready_probe, up

__all__ = [
    "CLUSTER_TAGS",
    "STACK_ORDER",
    "TAG_DEPLOYMENT_ID",
    "TAG_EPHEMERAL",
    "TAG_EXPIRES",
    "TAG_NAME",
    "BenchHarness",
    "CommandResult",
    "DownReport",
    "EphemeralCluster",
    "EphemeralError",
    "Leftover",
    "ReapReport",
    "Runner",
    "StackRef",
    "SubprocessRunner",
    "Sweeper",
    "Timeouts",
    "UpResult",
    "bench_argv",
    "bench_via_cli",
    "cdk_command",
    "check_name",
    "check_name_is_free",
    "cluster_name_for",
    "cluster_tagged",
    "deploy_argv",
    "down",
    "ephemeral_stacks",
    "ephemeral_tags",
    "find_cluster",
    "find_clusters",
    "first_model",
    "ignored_stacks",
    "iso",
    "kubeconfig_yaml",
    "list_rows",
    "model_ready_probe",
    "new_deployment_id",
    "new_name",
    "owned_by",
    "ownership_problem",
    "parse_iso",
    "parse_ttl",
    "reap",
    "recheck",
    "render_rows",
    "smoke",
    "smoke_verdict",
    "stack_names_for",
    "up",
    "write_kubeconfig",
]
