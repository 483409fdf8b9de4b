"""Old import paths of moved modules, kept for one release (see CHANGELOG, "Architecture").

``import eks_llm_stack.quality`` yields the very module ``eks_llm_stack.gates.cfn_lint`` (the same
object, so ``monkeypatch`` on either name patches both); a one-line ``.pyi`` at each old path
re-exports the new module for type checkers. New code imports the new paths.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from types import ModuleType

#: old dotted name → new dotted name. Removed in the release after next.
MOVED: dict[str, str] = {
    "eks_llm_stack.alerts": "eks_llm_stack.monitoring.alerts",
    "eks_llm_stack.dashboards": "eks_llm_stack.monitoring.dashboards",
    "eks_llm_stack.metrics": "eks_llm_stack.monitoring.metrics",
    "eks_llm_stack.quality": "eks_llm_stack.gates.cfn_lint",
    "eks_llm_stack.nag": "eks_llm_stack.gates.nag",
    "eks_llm_stack.validate": "eks_llm_stack.gates.manifests",
    "eks_llm_stack.profile_cli": "eks_llm_stack.cli.profile",
    "eks_llm_stack.summary": "eks_llm_stack.cli.summary",
    "eks_llm_stack.ops.cli": "eks_llm_stack.cli.ops",
    "eks_llm_stack.bench.cli": "eks_llm_stack.cli.bench",
    "eks_llm_stack.charts.scheduling": "eks_llm_stack.charts.kube",
    "eks_llm_stack.charts.names": "eks_llm_stack.naming",
}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves an old name to the new module. First on ``sys.meta_path`` so that no stale copy at an
    old path (an older checkout behind an editable install) can shadow it; it answers only for ``MOVED``."""

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(MOVED[spec.name])
        sys.modules[spec.name] = module
        return module

    def exec_module(self, module: ModuleType) -> None:
        # Already executed under its new name; running it again would make a second copy.
        return None


def install() -> None:
    if not any(isinstance(f, _Alias) for f in sys.meta_path):
        sys.meta_path.insert(0, _Alias())
