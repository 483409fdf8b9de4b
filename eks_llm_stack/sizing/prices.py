"""User-given prices (``--price-source FILE``): spot, Capacity Block or negotiated rates.

The file is YAML or JSON, either a flat mapping ``instance type or family: USD per hour`` or::

    capacity: capacity-block        # optional: on-demand, spot or capacity-block
    region: us-east-2               # optional
    prices:
      p5e.48xlarge: 43.26
      p5en.48xlarge: 45.0

Given prices win over the catalog's on-demand figures; with spot or capacity-block they are
the only prices (nothing offline knows them).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..errors import ConfigError, Problem, Problems


def load_price_file(path: str | Path) -> tuple[dict[str, float], str | None, str | None]:
    """(prices by instance type or family, capacity or None, region or None) of a price file."""
    import yaml

    path = Path(path)
    subject = f"price source {path}"
    try:
        doc: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            subject, [Problem("price_source", "file not found", "give an existing file", str(path))]
        ) from None
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(
            subject, [Problem("price_source", f"is not readable YAML/JSON ({exc})", "fix the file's syntax")]
        ) from None
    if not isinstance(doc, dict):
        raise ConfigError(
            subject, [Problem("price_source", "is not a mapping", "write 'instance-type: usd-per-hour' lines")]
        )
    table = doc.get("prices", doc) if isinstance(doc.get("prices"), dict) else doc
    capacity = doc.get("capacity") if isinstance(doc.get("capacity"), str) else None
    region = doc.get("region") if isinstance(doc.get("region"), str) else None
    p = Problems(subject)
    out: dict[str, float] = {}
    for key, value in table.items():
        if key in ("capacity", "region"):
            continue
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
        if not ok:
            p.add(f"prices.{key}", "must be a positive number of USD per hour", "write e.g. 43.26", value)
            continue
        out[str(key).strip().lower()] = float(value)
    if not out and not p.problems:
        p.add("prices", "lists no price", "add 'instance-type: usd-per-hour' entries")
    p.raise_if_any()
    return out, capacity, region


__all__ = ["load_price_file"]
