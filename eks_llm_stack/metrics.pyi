from eks_llm_stack.monitoring.metrics import *  # noqa: F403  (moved; see eks_llm_stack/_moved.py)
