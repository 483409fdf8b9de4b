"""``python -m eks_llm_stack.cli`` runs the ``eks-llm-stack`` command."""

import sys

from . import main

sys.exit(main())
