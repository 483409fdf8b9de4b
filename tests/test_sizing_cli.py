"""``eks-llm-stack size`` and ``eks-llm-stack cost`` from the command line."""

from __future__ import annotations

import json

import pytest

from eks_llm_stack.cli import main


def test_size_json_prints_the_plan(capsys):
    assert main(["size", "llama-2-13b", "--concurrency", "4", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["tensor_parallel_size"] >= 1 and isinstance(data["vllm_args"], list)


def test_size_table_shows_budget_and_runners_up(capsys):
    assert main(["size", "llama-2-70b"]) == 0
    out = capsys.readouterr().out
    assert "memory budget per GPU" in out and "runners-up" in out and "estimate, not a measurement" in out


def test_size_reads_a_config_json(tmp_path, capsys):
    cfg = {
        "num_hidden_layers": 32,
        "hidden_size": 4096,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "vocab_size": 128256,
        "max_position_embeddings": 131072,
        "intermediate_size": 14336,
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    assert main(["size", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["weights_gib"] == pytest.approx(14.96, abs=0.05)


def test_size_unknown_model_exits_2_with_suggestion(capsys):
    assert main(["size", "mistral-7x"]) == 2
    assert "did you mean 'mistral-7b'" in capsys.readouterr().err


def test_cost_uses_the_catalog_price_by_default(capsys):
    assert main(["cost", "--instance", "g5.2xlarge", "--tokens-per-second", "161.3", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["hourly_usd"] == 1.212
    assert data["minutes_per_1m_tokens"] == pytest.approx(103.33, abs=0.01)


def test_cost_with_hourly_usd_reproduces_red_hat_row(capsys):
    assert (
        main(["cost", "--instance", "p4d.24xlarge", "--tokens-per-second", "155.18", "--hourly-usd", "32.77", "--json"])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["usd_per_1m_tokens"] == pytest.approx(58.66, rel=0.01)


def test_cost_on_spot_needs_a_price(capsys):
    assert main(["cost", "--instance", "g6.xlarge", "--tokens-per-second", "100", "--capacity", "spot"]) == 2
    err = capsys.readouterr().err
    assert "hourly_usd: no spot price for g6.xlarge" in err and "--price-source" in err
