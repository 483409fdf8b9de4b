"""Load-test harness, vLLM-compatible simulator and result reporting.

``eks-llm-stack bench run|report|merge`` and ``eks-llm-stack simulate`` (:mod:`eks_llm_stack.cli.bench`) are the command-line faces;
the modules are importable for other tools:

- :mod:`.harness` - :class:`~.harness.Target`, :func:`~.harness.run_level`, :func:`~.harness.run_levels`
- :mod:`.simulator` - :class:`~.simulator.SimulatorConfig`, :func:`~.simulator.running`
- :mod:`.metrics` - definitions, :func:`~.metrics.summarize_level`, :func:`~.metrics.find_knee`
- :mod:`.results` / :mod:`.plots` - summary.json, requests.jsonl, summary.csv and PNG plots
- :mod:`.sessions` - multi-turn chat sessions with think time (:func:`~.sessions.run_session_level`)
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .harness import RunState, Target, run_level, run_levels
    from .metrics import Slo, distribution, find_knee, summarize_level
    from .results import Price, ResultWriter, build_summary, load_summary, write_results
    from .sessions import Session, Turn, load_sessions, run_session_level, synthetic_sessions
    from .simulator import Simulator, SimulatorConfig, running, serve
    from .workload import (
        LengthSpec,
        LevelSpec,
        Prompt,
        ThinkTime,
        load_dataset,
        load_trace,
        scenario_levels,
        shared_prefix_prompts,
    )

__all__ = [
    "LengthSpec",
    "LevelSpec",
    "Price",
    "Prompt",
    "ResultWriter",
    "RunState",
    "Session",
    "Simulator",
    "SimulatorConfig",
    "Slo",
    "Target",
    "ThinkTime",
    "Turn",
    "build_summary",
    "distribution",
    "find_knee",
    "load_dataset",
    "load_sessions",
    "load_summary",
    "load_trace",
    "run_level",
    "run_levels",
    "run_session_level",
    "running",
    "scenario_levels",
    "serve",
    "shared_prefix_prompts",
    "summarize_level",
    "synthetic_sessions",
    "write_results",
]

# Loaded on first use: the CLI imports submodules of this package and its --help must stay fast.
_HOMES = {
    "LengthSpec": ".workload",
    "LevelSpec": ".workload",
    "Price": ".results",
    "Prompt": ".workload",
    "ResultWriter": ".results",
    "RunState": ".harness",
    "Simulator": ".simulator",
    "Session": ".sessions",
    "SimulatorConfig": ".simulator",
    "Slo": ".metrics",
    "Target": ".harness",
    "ThinkTime": ".workload",
    "Turn": ".sessions",
    "build_summary": ".results",
    "distribution": ".metrics",
    "find_knee": ".metrics",
    "load_dataset": ".workload",
    "load_sessions": ".sessions",
    "load_summary": ".results",
    "load_trace": ".workload",
    "run_level": ".harness",
    "run_levels": ".harness",
    "run_session_level": ".sessions",
    "running": ".simulator",
    "scenario_levels": ".workload",
    "serve": ".simulator",
    "shared_prefix_prompts": ".workload",
    "summarize_level": ".metrics",
    "synthetic_sessions": ".sessions",
    "write_results": ".results",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(_HOMES[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
