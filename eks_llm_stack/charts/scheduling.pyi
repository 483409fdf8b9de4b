from eks_llm_stack.charts.kube import *  # noqa: F403  (moved; see eks_llm_stack/_moved.py)
