"""checkov over every shipped profile's templates and manifests: no failed check without an acknowledgment.

One checkov run (a subprocess of its own virtualenv, ``make checkov``) covers every profile and the
seeded bad resources at once, so the suite pays for one start-up.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest
from conftest import profile_names, synthesized

from eks_llm_stack.charts.render import CRDS_STEP
from eks_llm_stack.gates.checkov import (
    CheckovResult,
    CheckovUnavailable,
    acknowledge_k8s,
    checkov_command,
    k8s_skip_annotations,
    run_checkov,
)

pytestmark = pytest.mark.slow

BAD_TEMPLATE = {
    "Resources": {
        "OpenBucket": {"Type": "AWS::S3::Bucket", "Properties": {}},
        "PlainLogs": {"Type": "AWS::Logs::LogGroup", "Properties": {}},
    }
}
BAD_POD = """\
apiVersion: v1
kind: Pod
metadata: {name: bad, namespace: default}
spec:
  containers:
    - name: c
      image: busybox:latest
      securityContext: {privileged: true}
"""


def _files(profile: str) -> list[Path]:
    out = synthesized(profile).outdir
    # Every step directory of dist/manifests but the vendored upstream CRDs (10-crds/: schemas, no workload).
    manifests = [p for p in (out / "manifests").rglob("*.yaml") if p.parent.name != CRDS_STEP]
    return sorted((out / "cdk.out").glob("*.template.json")) + sorted(manifests)


@cache
def _report(seed_dir: str) -> list[CheckovResult]:
    seeds = Path(seed_dir)
    (seeds / "bad.template.json").write_text(json.dumps(BAD_TEMPLATE))
    (seeds / "bad-pod.yaml").write_text(BAD_POD)
    files = [f for p in profile_names() for f in _files(p)]
    return run_checkov([*files, seeds / "bad.template.json", seeds / "bad-pod.yaml"])


@pytest.fixture(scope="session")
def report(tmp_path_factory: pytest.TempPathFactory) -> list[CheckovResult]:
    try:
        checkov_command()
    except CheckovUnavailable as exc:
        pytest.fail(str(exc))
    return _report(str(tmp_path_factory.mktemp("checkov-seeds")))


def _of(report: list[CheckovResult], files: list[Path]) -> list[CheckovResult]:
    wanted = {str(f.resolve()) for f in files}
    return [r for r in report if str(Path(r.file).resolve()) in wanted]


@pytest.mark.parametrize("profile", profile_names())
def test_no_unacknowledged_checkov_failure(report: list[CheckovResult], profile: str) -> None:
    mine = _of(report, _files(profile))
    assert any(r.passed for r in mine), "checkov evaluated nothing: the gate could not fail"
    assert [str(r) for r in mine if not r.passed and not r.skipped] == []


@pytest.mark.parametrize("profile", profile_names())
def test_every_checkov_acknowledgment_has_a_reason(report: list[CheckovResult], profile: str) -> None:
    skipped = [r for r in _of(report, _files(profile)) if r.skipped]
    assert skipped, "no acknowledgment was read: the skip annotations or metadata are not where checkov looks"
    assert [str(r) for r in skipped if len(r.comment.strip()) < 10] == []


def test_seeded_bad_resources_fail(report: list[CheckovResult]) -> None:
    failed = {(Path(r.file).name, r.check_id) for r in report if not r.passed and not r.skipped}
    assert ("bad.template.json", "CKV_AWS_158") in failed  # log group without a KMS key
    assert ("bad.template.json", "CKV_AWS_18") in failed  # bucket without access logs
    assert ("bad-pod.yaml", "CKV_K8S_16") in failed  # privileged container


def test_acknowledgments_refuse_an_empty_reason() -> None:
    with pytest.raises(ValueError, match="needs a real reason"):
        k8s_skip_annotations({"CKV_K8S_11": ""})

    class _Meta:
        def to_json(self) -> dict:
            return {}

    class _Obj:
        metadata = _Meta()

    with pytest.raises(ValueError, match="needs a real reason"):
        acknowledge_k8s(_Obj(), "CKV_K8S_11", "short")
