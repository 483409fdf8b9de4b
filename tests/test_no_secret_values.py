"""No token ever reaches a template or a manifest: scan everything synthesized for secret-looking values."""

from __future__ import annotations

import base64
import json

import pytest

from eks_llm_stack.config.data import looks_like_secret

HF = "hf_" + "QwErTyUiOpAsDfGhJkLzXcVbNm12345678"
NGC = "nvapi-" + "Zx9_" * 16
NGC_LEGACY = base64.b64encode(b"a1b2c3d4e5f6g7h8i9j0k1l2m3:0f8fad5b-d9cb-469f-a165-70867728950e").decode()


def _scan(text: str) -> list[str]:
    """Every line (JSON value) of ``text`` that looks like a secret."""
    return [line[:80] for line in text.splitlines() if looks_like_secret(line)]


def test_templates_and_manifests_hold_no_secret_values(any_synth) -> None:
    found = []
    for name, template in any_synth.templates.items():
        found += [f"{name}: {hit}" for hit in _scan(json.dumps(template, indent=1))]
    for name, docs in any_synth.manifests.items():
        found += [f"manifests/{name}: {hit}" for hit in _scan(json.dumps(docs, indent=1))]
    assert found == []


@pytest.mark.parametrize(
    "planted",
    [
        HF,
        NGC,
        NGC_LEGACY,
        base64.b64encode(HF.encode()).decode(),
        base64.b64encode(f"HF_TOKEN={HF}\n".encode()).decode(),  # a token inside a base64 blob, misaligned
        base64.b64encode(f"x{NGC}".encode()).decode(),
    ],
)
def test_scanner_catches_a_planted_token(production_synth, planted: str) -> None:
    template = json.loads(json.dumps(production_synth.template("Data")))
    template["Resources"]["Planted"] = {"Type": "AWS::SSM::Parameter", "Properties": {"Value": planted}}
    assert _scan(json.dumps(template, indent=1))


def test_scanner_leaves_ordinary_values_alone() -> None:
    ordinary = [
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:llm/huggingface-token",
        "hf_transfer",
        "c2VydmluZw==",
    ]
    assert [v for v in ordinary if looks_like_secret(v)] == []


@pytest.mark.parametrize(
    "data",
    [
        {"tags": {"owner": HF}},
        {"models": [{"name": "m", "source": "hf://org/model", "vllm_args": [f"--api-key={NGC}"]}]},
    ],
)
def test_a_token_in_the_profile_never_reaches_the_output(data: dict) -> None:
    """The issue's two leaks (vllm_args, tags): refused at validation, so nothing is synthesized."""
    from eks_llm_stack.config import validate_profile
    from eks_llm_stack.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        validate_profile(data)
    assert "holds what looks like a token" in str(err.value)
    assert HF not in str(err.value) and NGC not in str(err.value)
