from eks_llm_stack.monitoring.alerts import *  # noqa: F403  (moved; see eks_llm_stack/_moved.py)
