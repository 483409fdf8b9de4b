"""Cost per 1M tokens reproduces the Red Hat table of REFERENCE.md (0.1 % minutes, 1 % dollars)."""

from __future__ import annotations

import pytest

from eks_llm_stack.errors import ConfigError
from eks_llm_stack.sizing.cost import token_cost

# model, instance, $/h, tok/s, minutes per 1M, $ per 1M -- as printed in the article.
RED_HAT = [
    ("llama-2-7b", "g5.2xlarge", 1.21, 161.3, 103.32, 2.09),
    ("llama-2-7b", "g5.12xlarge", 5.67, 336.96, 49.46, 4.68),
    ("llama-2-13b", "g5.12xlarge", 5.67, 203.24, 82.01, 7.75),
    ("llama-2-13b", "g5.48xlarge", 8.14, 224.55, 74.22, 10.07),
    ("llama-2-70b", "g5.48xlarge", 8.14, 62.65, 266.05, 36.11),
    ("llama-2-70b", "p4d.24xlarge", 32.77, 155.18, 107.41, 58.66),
]


@pytest.mark.parametrize("row", RED_HAT, ids=lambda r: f"{r[0]}-{r[1]}")
def test_red_hat_minutes_reproduce_within_0_1_percent(row):
    _, _, usd, tps, minutes, _ = row
    assert token_cost(usd, tps).minutes_per_1m_tokens == pytest.approx(minutes, rel=1e-3)


@pytest.mark.parametrize("row", RED_HAT, ids=lambda r: f"{r[0]}-{r[1]}")
def test_red_hat_dollars_reproduce_within_1_percent(row):
    _, _, usd, tps, _, dollars = row
    assert token_cost(usd, tps).usd_per_1m_tokens == pytest.approx(dollars, rel=1e-2)


def test_first_row_is_computed_without_intermediate_rounding():
    # The article prints 103.32 min and $2.09; exact arithmetic gives 103.33 and $2.084.
    tc = token_cost(1.21, 161.3)
    assert round(tc.minutes_per_1m_tokens, 2) == 103.33
    assert round(tc.usd_per_1m_tokens, 3) == 2.084


def test_bad_price_and_throughput_are_reported_together():
    with pytest.raises(ConfigError, match=r"2 problems[\s\S]*hourly_usd[\s\S]*tokens_per_second"):
        token_cost(0, -1)
