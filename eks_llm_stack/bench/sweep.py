"""SLA sweep: the highest concurrency or rate at which the server still meets its SLOs.

Bisection over the load: the lowest and highest loads are tried first; if the lowest already
misses, or the highest still meets, the answer lies outside the range and the result says the
limit was not reached. Otherwise the bracket [meets, misses] halves until it is one user wide
(concurrency) or within 5 % (rate), or the step budget is spent. "Meets" is: the share of
requests meeting every SLO (``goodput_fraction``) is at least the attainment target.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

RunOne = Callable[[float], Awaitable[dict[str, Any]]]


def meets(level: dict[str, Any], attainment: float) -> bool:
    share = level.get("goodput_fraction")
    return share is not None and share >= attainment


async def bisect(
    run_one: RunOne, *, lo: float, hi: float, integer: bool, attainment: float, max_steps: int = 8
) -> dict[str, Any]:
    """Run levels chosen by bisection; returns the sweep's result for summary.json."""
    tried: list[dict[str, Any]] = []

    async def trial(x: float) -> bool:
        lv = await run_one(x)
        ok = meets(lv, attainment)
        tried.append({"load": x, "goodput_fraction": lv.get("goodput_fraction"), "meets": ok})
        return ok

    result: dict[str, Any] = {"attainment_target": attainment, "range": [lo, hi], "trials": tried}
    if not await trial(lo):
        return {**result, "best": None, "reached": False, "why": f"the lowest load ({lo:g}) already misses the SLOs"}
    if await trial(hi):
        return {**result, "best": hi, "reached": False, "why": f"the highest load ({hi:g}) still meets the SLOs"}
    good, bad = lo, hi
    for _ in range(max_steps):
        if (integer and bad - good <= 1) or (not integer and bad / good <= 1.05):
            break
        mid = math.floor((good + bad) / 2) if integer else math.sqrt(good * bad)
        if await trial(mid):
            good = mid
        else:
            bad = mid
    return {**result, "best": good, "first_missing": bad, "reached": True, "why": "bracketed"}
