"""Input AWS would reject at deploy time, or that costs minutes, is refused at load time with field and fix."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from eks_llm_stack.config import load_profile, validate_profile
from eks_llm_stack.config.profile import MAX_PROFILE_BYTES, MAX_PROFILE_TAGS
from eks_llm_stack.errors import ConfigError

HF = "hf_" + "QwErTyUiOpAsDfGhJkLzXcVbNm12345678"
NGC = "nvapi-" + "Zx9_" * 16
ENV = {"account": "123456789012", "region": "us-east-1"}


def _refused(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as err:
        validate_profile(data)
    return str(err.value)


def _load_refused(path: Path) -> str:
    with pytest.raises(ConfigError) as err:
        load_profile(path)
    return str(err.value)


# -- YAML bounds -----------------------------------------------------------------------------------

BOMB = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(f"{c}: &{c} [{','.join([f'*{p}'] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)),
    ]
)


def test_an_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    assert len(BOMB) < 400
    text = _load_refused(path)  # refused before expansion: it took 27 s and 2.2 GB
    assert "(file)" in text and "expands to more than" in text and "instead of repeating anchors" in text


def test_too_many_aliases_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "aliases.yaml"
    path.write_text("x: &x 1\ntags_list: [" + ", ".join(["*x"] * 150) + "]\n")
    text = _load_refused(path)
    assert "more than 100 YAML aliases" in text


def test_a_multi_megabyte_profile_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("prefix: llm\n" + "# padding\n" * (MAX_PROFILE_BYTES // 10 + 1))
    text = _load_refused(path)
    assert "(file)" in text and "a profile is at most 256 KiB" in text


def test_ordinary_anchors_still_load(tmp_path: Path) -> None:
    path = tmp_path / "anchors.yaml"
    path.write_text("tags: &t {team: ml}\nprefix: llm\n")
    assert load_profile(path).tags == {"team": "ml"}


# -- AWS limits ------------------------------------------------------------------------------------


@pytest.mark.parametrize("cidr", ["10.0.0.0/8", "10.0.0.0/29", "fd00::/56"])
def test_vpc_cidr_outside_16_to_28_is_refused(cidr: str) -> None:
    text = _refused({"network": {"cidr": cidr}})
    assert "network.cidr" in text and "/16 to /28" in text and "10.0.0.0/16" in text


def test_vpc_cidr_too_small_for_the_subnet_layout_is_refused() -> None:
    text = _refused({"network": {"cidr": "10.0.0.0/20"}})
    assert "network:" in text and "need 52224" in text and "use a /16" in text


def test_a_bare_ip_where_a_cidr_is_meant_is_refused() -> None:
    text = _refused({"network": {"cidr": "10.0.0.0"}})
    assert "network.cidr: '10.0.0.0' is a bare IP address" in text and "'10.0.0.0/32'" in text


def test_too_many_tags_are_refused() -> None:
    text = _refused({"tags": {f"t{i}": "x" for i in range(MAX_PROFILE_TAGS + 1)}})
    assert f"{MAX_PROFILE_TAGS + 1} tags" in text and f"keep at most {MAX_PROFILE_TAGS} tags" in text
    validate_profile({"tags": {f"t{i}": "x" for i in range(MAX_PROFILE_TAGS)}})


def test_tag_keys_and_values_over_aws_limits_are_refused_all_at_once() -> None:
    text = _refused({"tags": {"k" * 129: "v", "aws:owner": "v", "eks-llm-stack:name": "v", "long": "v" * 257}})
    assert "tags:" in text
    assert "tag keys ['kkkk" in text and "aws:owner" in text and "not starting with 'aws:'" in text
    assert "eks-llm-stack:name" in text and "set by the library" in text
    assert "the values of tags ['long']" in text and "at most 256" in text


def test_a_region_that_does_not_exist_is_refused() -> None:
    text = _refused({"account": "123456789012", "region": "us-east-7"})
    assert "region: 'us-east-7' is not an AWS region" in text and "botocore" in text and "us-east-1" in text


def test_a_cluster_placement_group_spanning_zones_is_refused() -> None:
    text = _refused({**ENV, "compute": {"pools": [{"name": "train", "preset": "training"}]}})
    assert "compute.pools[0].availability_zone" in text and "cluster placement group" in text
    assert "us-east-1a" in text
    ok = {**ENV, "compute": {"pools": [{"name": "train", "preset": "training", "availability_zone": "us-east-1a"}]}}
    validate_profile(ok)


def test_a_zone_of_another_region_is_refused() -> None:
    pool = {"name": "train", "preset": "training", "availability_zone": "eu-west-1a"}
    text = _refused({**ENV, "compute": {"pools": [pool]}})
    assert "compute.pools[0].availability_zone: is not a zone of region us-east-1" in text


def test_an_instance_type_the_region_does_not_offer_is_refused() -> None:
    pool = {"name": "big", "instance_types": ["p5.48xlarge"]}
    text = _refused({"account": "123456789012", "region": "cn-north-1", "compute": {"pools": [pool]}})
    assert "compute.pools[0].instance_types: are not offered in cn-north-1" in text
    assert "cluster.system_nodes.instance_types: are not offered in cn-north-1" in text
    assert "describe-instance-type-offerings" in text
    # Where the price list knows the region and the type, it passes.
    validate_profile({**ENV, "compute": {"pools": [pool]}})


def test_regions_the_catalog_does_not_know_are_not_guessed() -> None:
    pool = {"name": "big", "instance_types": ["p5.48xlarge"]}
    validate_profile({"account": "123456789012", "region": "eu-west-3", "compute": {"pools": [pool]}})


# -- secrets in free-form fields ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"tags": {"owner": HF}}, "tags.owner"),
        ({"models": [{"name": "m", "source": "hf://org/model", "vllm_args": ["--x", NGC]}]}, "models[0].vllm_args[1]"),
        (
            {"models": [{"name": "m", "source": "hf://org/model", "vllm_args": [f"--hf-token={HF}"]}]},
            "models[0].vllm_args[0]",
        ),
        ({"tags": {"blob": base64.b64encode(f"HF_TOKEN={HF}".encode()).decode()}}, "tags.blob"),
        ({"cluster": {"name": HF}}, "cluster.name"),
    ],
)
def test_a_token_in_a_free_form_field_is_refused_and_not_echoed(data: dict[str, Any], field: str) -> None:
    text = _refused(data)
    assert f"{field}: holds what looks like a token" in text
    assert "Secrets Manager" in text and "put-secret-value" in text
    assert HF not in text and NGC not in text


def test_every_token_is_reported_at_once() -> None:
    text = _refused({"tags": {"a": HF, "b": NGC}, "prefix": "BAD PREFIX"})
    assert "tags.a" in text and "tags.b" in text


def test_shipped_profiles_still_load() -> None:
    for name in ("default", "ci-ephemeral", "production.example"):
        load_profile(name)
