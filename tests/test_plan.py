"""The plan layer: one resolution of the profile that synth, ``profile validate`` and ops share."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from aws_cdk import App

from eks_llm_stack.cli import main
from eks_llm_stack.config import validate_profile
from eks_llm_stack.config.compute import GpuNodePoolProps
from eks_llm_stack.config.profile import PROFILE_DIR
from eks_llm_stack.errors import ConfigError
from eks_llm_stack.plan import plan_platform
from eks_llm_stack.synth import build


def prod() -> dict[str, Any]:
    return yaml.safe_load((PROFILE_DIR / "production.example.yaml").read_text())


def _mutate(fn: Any) -> dict[str, Any]:
    data = prod()
    fn(data)
    return data


LLAMA = {"name": "llama", "model": "llama-3.1-8b", "source": "s3://bucket/llama"}

#: Profiles that pass the schema but that synthesis rejects: cross-section rules.
BAD: dict[str, tuple[dict[str, Any], str]] = {
    "duplicate model names": (
        _mutate(lambda d: d.__setitem__("models", [LLAMA, dict(LLAMA)])),
        "are used more than once",
    ),
    "pool name typo": (
        _mutate(lambda d: d.__setitem__("models", [{**LLAMA, "pool": "inference-spto"}])),
        "names no pool of compute.pools",
    ),
    "multi-node model on a spot pool": (
        _mutate(lambda d: d.__setitem__("models", [{**LLAMA, "model": "llama-3.1-405b", "pool": "inference-spot"}])),
        "needs pools with EFA",
    ),
    "instance type the pool does not launch": (
        _mutate(
            lambda d: d.__setitem__("models", [{**LLAMA, "instance_type": "p5.48xlarge", "pool": "inference-spot"}])
        ),
        "is not an instance type",
    ),
    "cache the profile lacks": (
        _mutate(
            lambda d: (
                d["storage"].pop("efs", None),
                d.__setitem__("models", [{**LLAMA, "cache": "efs", "pool": "inference-spot"}]),
            )
        ),
        "has no efs storage",
    ),
}


def _synth_error(data: dict[str, Any]) -> ConfigError:
    profile = validate_profile(copy.deepcopy(data))
    with pytest.raises(ConfigError) as err:
        build(profile, app=App(context={"nag": "false"}, builtin_cloud_formation_validation=False))
    return err.value


@pytest.mark.parametrize("case", sorted(BAD))
def test_profile_validate_rejects_what_synth_rejects_with_the_same_message(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, expected = BAD[case]
    synth_err = _synth_error(data)
    assert expected in str(synth_err)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    capsys.readouterr()
    assert main(["profile", "validate", str(path)]) == 2
    err = capsys.readouterr().err
    # The same problems (field, message and fix), not merely "some error".
    for problem in synth_err.problems:
        assert problem.field in err and problem.message in err and problem.fix in err


def test_shipped_profiles_plan_and_validate_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "validate"]) == 0
    assert "invalid" not in capsys.readouterr().err


def test_production_plan_has_every_pool_and_model() -> None:
    plan = plan_platform(validate_profile(prod()))
    assert [p.name for p in plan.pools] == [p["name"] for p in prod()["compute"]["pools"]]
    assert [m.config.name for m in plan.models] == [m["name"] for m in prod()["models"]]
    assert plan.serving_controllers
    # Family-based pools resolve to concrete catalog instances in the plan.
    spot = plan.pool("inference-spot")
    assert spot.catalog_instances()


def _pool_checks(models: int) -> int:
    data = prod()
    base = next(m for m in data["models"] if m.get("engine") != "simulator")
    data["models"] = [{**base, "name": f"m{i}"} for i in range(models)]
    for m in data["models"]:
        m.pop("api_key", None)
    profile = validate_profile(data)
    calls = 0
    orig = GpuNodePoolProps.check

    def counting(self: GpuNodePoolProps, *a: Any, **k: Any) -> Any:
        nonlocal calls
        calls += 1
        return orig(self, *a, **k)

    with mock.patch.object(GpuNodePoolProps, "check", counting):
        build(profile, app=App(context={"nag": "false"}, builtin_cloud_formation_validation=False))
    return calls


def test_pools_are_checked_once_per_build_whatever_the_model_count() -> None:
    pools = len(prod()["compute"]["pools"])
    one, many = _pool_checks(1), _pool_checks(6)
    # Only the stack's one tagging replace per pool runs the checks during a build; none per model.
    assert one == many == pools


# -- the stacks compose what the plan decided -------------------------------------------------------


def test_stacks_compose_what_the_plan_decided(any_synth) -> None:  # type: ignore[no-untyped-def]
    platform = any_synth.built.platform
    plan = platform.plan
    assert (platform.platform.karpenter is not None) == plan.karpenter == bool(plan.pools)
    assert set(platform.platform.gpu_pools) == {p.name for p in plan.pools}
    assert (platform.data.model_storage is not None) == plan.model_storage
    assert (platform.data.model_secrets is not None) == plan.external_secrets
    assert (platform.platform.observability is not None) == plan.observability
    grafana = plan.grafana_admin_secret
    assert platform.data.grafana_admin_secret_name == (grafana.name if grafana else None)
    generated = [
        r
        for r in any_synth.template("Data")["Resources"].values()
        if r["Type"] == "AWS::SecretsManager::Secret" and "grafana" in str(r["Properties"].get("Name", ""))
    ]
    assert len(generated) == (1 if grafana is not None and grafana.create else 0)
    assert set(plan.api_key_models) == set(platform.data.api_keys.secret_names if platform.data.api_keys else ())


def _plan(**sections: Any) -> Any:
    return plan_platform(validate_profile(sections))


def test_the_grafana_login_is_decided_once() -> None:
    assert _plan().grafana_admin_secret is not None
    generated = _plan().grafana_admin_secret
    assert (generated.name, generated.create, generated.is_arn) == ("llm/grafana-admin", True, False)
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:team/grafana-AbCdEf"
    imported = _plan(observability={"grafana_admin_secret": arn}).grafana_admin_secret
    assert (imported.name, imported.create, imported.is_arn) == (arn, False, True)
    assert _plan(observability={"managed": True}).grafana_admin_secret is None
    assert _plan(observability={"enabled": False}).grafana_admin_secret is None


def test_cache_claims_are_the_caches_the_profile_has() -> None:
    assert _plan(storage={"efs": {}}).cache_claims == {"efs": "model-cache-efs"}
    assert _plan(storage={"fsx": {}, "efs": {}}).cache_claims == {"fsx": "model-cache-fsx", "efs": "model-cache-efs"}
    assert _plan(storage={}).cache_claims == {}


def test_warnings_are_decided_by_the_plan() -> None:
    pool = {"name": "gpu", "instance_types": ["g6.4xlarge"]}
    assert _plan(compute={"pools": [pool]}).unpinned_ami_pools == ("gpu",)
    pinned = {**pool, "ami_version": "v20260930"}
    assert _plan(compute={"pools": [pinned]}).unpinned_ami_pools == ()
    keyed = {**LLAMA, "engine": "vllm", "instance_type": "g6.4xlarge", "pool": "gpu"}
    loose = _plan(
        compute={"pools": [pool]}, models=[keyed], secrets={"enabled": False}, observability={"enabled": False}
    )
    assert loose.unauthenticated_models and loose.api_key_models == ()
    assert not _plan(compute={"pools": [pool]}, models=[keyed]).unauthenticated_models
