"""Cost of generated tokens, from an hourly price and a measured throughput.

The formulas (``REFERENCE.md``, serving metrics)::

    cost per 1M tokens    = $/hour / (tokens/s * 3600) * 1e6
    minutes per 1M tokens = 1e6 / tokens/s / 60

No intermediate rounding: published tables that rounded along the way differ from these
figures by up to 1 % (see ``docs/sizing.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import collecting

TOKENS = 1_000_000


@dataclass(frozen=True, kw_only=True)
class TokenCost:
    """What a million generated tokens cost at a given price and throughput."""

    hourly_usd: float
    tokens_per_second: float

    @property
    def usd_per_1m_tokens(self) -> float:
        return self.hourly_usd / (self.tokens_per_second * 3600.0) * TOKENS

    @property
    def minutes_per_1m_tokens(self) -> float:
        return TOKENS / self.tokens_per_second / 60.0


def token_cost(hourly_usd: float, tokens_per_second: float) -> TokenCost:
    """Validate the inputs (both must be positive, finite numbers) and return the cost."""
    with collecting("cost") as p:
        p.check(
            _positive(hourly_usd),
            "hourly_usd",
            hourly_usd,
            "must be a positive price in US dollars per hour",
            "pass the instance's $/hour, e.g. 1.212",
        )
        p.check(
            _positive(tokens_per_second),
            "tokens_per_second",
            tokens_per_second,
            "must be a positive throughput",
            "pass the measured output tokens per second of the whole test",
        )
    return TokenCost(hourly_usd=float(hourly_usd), tokens_per_second=float(tokens_per_second))


def _positive(x: float) -> bool:
    try:
        return float(x) > 0 and float(x) != float("inf")
    except (TypeError, ValueError):
        return False
