"""Paths of the vendored upstream artifacts (``README.md`` beside this file names each one's source).

Plain paths and lookups with no third-party imports, so constructs can use them without the ``gates`` extra.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent
#: Helm charts at the pinned versions (``<chart>-<version>.tgz``).
CHARTS_DIR = ROOT / "charts"
#: Upstream CustomResourceDefinitions at the pinned releases.
CRD_DIR = ROOT / "crds"


class NotVendoredError(FileNotFoundError):
    """A pinned chart has no vendored archive."""


def chart_archive(chart: str, version: str, charts_dir: Path = CHARTS_DIR) -> Path:
    """The vendored ``<chart>-<version>.tgz`` (chart versions may carry a leading ``v`` or not)."""
    bare = version.removeprefix("v")
    for name in (f"{chart}-{version}.tgz", f"{chart}-{bare}.tgz", f"{chart}-v{bare}.tgz"):
        if (charts_dir / name).is_file():
            return charts_dir / name
    raise NotVendoredError(f"chart {chart} {version} is not vendored in {charts_dir}: add it (see its README)")
