"""Profiles: every shipped one loads; bad ones fail with every problem, its field and its fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from eks_llm_stack.config import Profile, list_profiles, load_profile, ttl_seconds, validate_profile
from eks_llm_stack.errors import ConfigError


def test_shipped_profiles_are_the_three_documented_ones() -> None:
    assert {"default", "ci-ephemeral", "production.example"} <= set(list_profiles())


@pytest.mark.parametrize("name", list_profiles())
def test_every_shipped_profile_validates(name: str) -> None:
    assert isinstance(load_profile(name), Profile)


def test_default_profile_is_environment_agnostic() -> None:
    p = load_profile("default")
    assert p.account is None and p.region is None
    assert p.ephemeral is False


def test_unknown_key_names_the_field_and_suggests_the_close_key() -> None:
    with pytest.raises(ConfigError) as err:
        validate_profile({"netwrk": {}})
    text = str(err.value)
    assert "netwrk: unknown key" in text
    assert "did you mean 'network'?" in text


def test_two_problems_are_reported_together() -> None:
    with pytest.raises(ConfigError) as err:
        validate_profile({"cluster": {"endpoint": {"public_cidrs": ["10.0.0.300/8"]}}, "network": {"max_azs": "three"}})
    assert len(err.value.problems) == 2
    text = str(err.value)
    assert "2 problems" in text
    assert "cluster.endpoint.public_cidrs: '10.0.0.300/8' is not a CIDR block" in text
    assert "fix: write an IPv4 network such as 10.0.0.0/16" in text
    assert "network.max_azs" in text and "fix: give a whole number" in text


def test_cidr_with_host_bits_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"network.cidr: '10.0.0.1/16' is not a CIDR block"):
        validate_profile({"network": {"cidr": "10.0.0.1/16"}})


def test_account_without_region_is_refused_with_a_fix() -> None:
    with pytest.raises(ConfigError, match=r"account and region must be given together[\s\S]*fix: add the missing one"):
        validate_profile({"account": "123456789012"})


def test_account_must_be_twelve_digits() -> None:
    with pytest.raises(ConfigError, match=r"account: '1234' is not an AWS account id"):
        validate_profile({"account": "1234", "region": "us-east-1"})


def test_admin_must_be_an_iam_arn() -> None:
    with pytest.raises(ConfigError, match=r"cluster.admins: \['alice'\] are not IAM role or user ARNs"):
        validate_profile({"cluster": {"admins": ["alice"]}})


def test_kubernetes_version_must_match_the_pinned_layer() -> None:
    with pytest.raises(ConfigError, match=r"cluster.kubernetes_version: Kubernetes 1.31 is not the version"):
        validate_profile({"cluster": {"kubernetes_version": "1.31"}})


def test_system_node_sizes_must_be_ordered() -> None:
    with pytest.raises(ConfigError, match=r"need min <= desired <= max, got 3 <= 2 <= 4"):
        validate_profile({"cluster": {"system_nodes": {"min": 3, "desired": 2, "max": 4}}})


def test_both_endpoints_off_is_refused() -> None:
    with pytest.raises(ConfigError, match="both the public and the private endpoint are off"):
        validate_profile({"cluster": {"endpoint": {"public": False, "private": False}}})


def test_imported_vpc_needs_private_subnets() -> None:
    with pytest.raises(ConfigError, match="an imported VPC needs at least two private subnets"):
        validate_profile({"network": {"vpc_id": "vpc-0abc1234"}})


def test_ttl_parsing() -> None:
    assert ttl_seconds("90m") == 5400
    assert ttl_seconds("4h") == 14400
    assert ttl_seconds("2d") == 172800
    with pytest.raises(ConfigError, match=r"ttl: '4 hours' is not a duration[\s\S]*fix: write a whole number"):
        validate_profile({"ttl": "4 hours"})


def test_prefix_rules() -> None:
    with pytest.raises(ConfigError, match=r"prefix: 'LLM_Prod' is not a usable prefix"):
        validate_profile({"prefix": "LLM_Prod"})
    assert validate_profile({"prefix": "llm-prod"}).stack_prefix == "LlmProd"


def test_missing_profile_lists_the_known_ones(tmp_path: Path) -> None:
    (tmp_path / "alpha.yaml").write_text("prefix: a\n")
    with pytest.raises(ConfigError, match=r"no such profile file[\s\S]*fix: use one of: alpha"):
        load_profile("beta", directory=tmp_path)


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("prefix: llm\nnetwork:\n  cidr: [10.0.0.0/16\n")
    with pytest.raises(ConfigError, match=r"is not valid YAML at line \d+"):
        load_profile(bad)


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    bad = tmp_path / "list.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_profile(bad)


def test_profiles_are_immutable() -> None:
    p = load_profile("default")
    with pytest.raises(Exception, match="frozen"):
        p.prefix = "other"  # type: ignore[misc]


def test_namespace_fields_share_one_rule_and_message() -> None:
    with pytest.raises(ConfigError) as err:
        validate_profile({"serving_namespace": "LLM_Serving", "observability": {"namespace": "-monitoring"}})
    text = str(err.value)
    assert "serving_namespace: 'LLM_Serving' is not a Kubernetes namespace name" in text
    assert "observability.namespace: '-monitoring' is not a Kubernetes namespace name" in text
    assert text.count("fix: use at most 63 lowercase letters, digits or '-'") == 2


@pytest.mark.parametrize("value", [1.0, 0.0, 1.5])
def test_gpu_memory_utilization_outside_the_open_interval_is_refused_as_sizing_refuses_it(value: float) -> None:
    # The sizing engine refuses 1.0 (nothing left for the CUDA context); the profile must too.
    model = {"name": "m", "source": "hf://Qwen/Qwen2.5-0.5B-Instruct", "gpu_memory_utilization": value}
    with pytest.raises(ConfigError) as err:
        validate_profile({"models": [model]})
    text = str(err.value)
    assert "models[0].gpu_memory_utilization: must be a fraction strictly between 0 and 1" in text
    assert f"(got {value})" in text
    assert "fix: use e.g. 0.90" in text
