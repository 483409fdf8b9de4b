"""Load-test harness, vLLM-compatible simulator and result reporting.

``eks-llm-stack bench run|report|merge`` and ``eks-llm-stack simulate`` (:mod:`eks_llm_stack.cli.bench`) are the command-line faces;
the modules are importable for other tools:

- :mod:`.harness` - :class:`~.harness.Target`, :func:`~.harness.run_level`, :func:`~.harness.run_levels`
- :mod:`.simulator` - :class:`~.simulator.SimulatorConfig`, :func:`~.simulator.running`
- :mod:`.metrics` - definitions, :func:`~.metrics.summarize_level`, :func:`~.metrics.find_knee`
- :mod:`.results` / :mod:`.plots` - summary.json, requests.jsonl, summary.csv and PNG plots
"""
