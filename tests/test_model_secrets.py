"""ModelSecrets: empty, KMS-encrypted secrets with pinned ids; secret values refused in the profile."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match, Template

from eks_llm_stack.config import validate_profile
from eks_llm_stack.constructs.model_secrets import ModelSecretsProps
from eks_llm_stack.errors import ConfigError

SECRET_LOGICAL_IDS = {
    "llm-prod/huggingface-token": "ModelSecretshuggingfacetoken9AA1CC6E",
    "llm-prod/ngc-api-key": "ModelSecretsngcapikeyBFC65B8C",
}
TOKEN = "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYz01234567"


@pytest.fixture(scope="module")
def data(production_synth) -> Template:
    return Template.from_json(production_synth.template("Data"))


def test_secret_logical_ids_are_pinned(data: Template) -> None:
    found = {r["Properties"]["Name"]: lid for lid, r in data.find_resources("AWS::SecretsManager::Secret").items()}
    assert found == SECRET_LOGICAL_IDS


def test_secrets_have_no_value_in_the_template(data: Template) -> None:
    for res in data.find_resources("AWS::SecretsManager::Secret").values():
        assert "SecretString" not in res["Properties"]
        assert "GenerateSecretString" not in res["Properties"]


def test_secrets_use_a_customer_managed_key(data: Template) -> None:
    data.all_resources_properties(
        "AWS::SecretsManager::Secret",
        {"KmsKeyId": {"Fn::GetAtt": [Match.string_like_regexp("ModelSecretsKey"), "Arn"]}},
    )


def test_secrets_are_retained_by_default(data: Template) -> None:
    for res in data.find_resources("AWS::SecretsManager::Secret").values():
        assert res["DeletionPolicy"] == "Retain"


def test_secrets_are_destroyed_only_when_ephemeral(ephemeral_synth) -> None:
    t = Template.from_json(ephemeral_synth.template("Data"))
    assert {r["DeletionPolicy"] for r in t.find_resources("AWS::SecretsManager::Secret").values()} == {"Delete"}


def test_a_value_in_the_profile_is_refused_with_the_cli_fix() -> None:
    with pytest.raises(ConfigError, match=r"secrets: a secret value is in the profile.*\n.*fix: .*put-secret-value"):
        validate_profile({"secrets": {"enabled": True, "names": {"huggingface-token": TOKEN}}})


def test_a_refused_value_is_not_echoed() -> None:
    with pytest.raises(ConfigError) as err:
        validate_profile({"secrets": {"enabled": True, "value": TOKEN}})
    assert TOKEN not in str(err.value) and "<redacted>" in str(err.value)


def test_a_token_anywhere_in_the_section_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"names\[0\]"):
        validate_profile({"secrets": {"names": [TOKEN]}})


def test_secret_names_must_use_allowed_characters() -> None:
    with pytest.raises(
        ConfigError, match=r"secrets\.names: \['hf token!'\] are not valid Secrets Manager names.*\n.*fix: use 1-512"
    ):
        validate_profile({"secrets": {"names": ["hf token!"]}})


def test_refresh_interval_must_be_a_duration() -> None:
    with pytest.raises(ConfigError, match=r"refresh_interval: '1 hour' is not a refresh interval.*\n.*fix: write"):
        validate_profile({"secrets": {"refresh_interval": "1 hour"}})


def test_props_report_every_problem() -> None:
    with pytest.raises(ConfigError, match="2 problems"):
        ModelSecretsProps(names=("a b",), name_prefix="bad prefix")
