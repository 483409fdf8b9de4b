"""The one way commands print tables: full width on a terminal, never truncated in a CI log or a pipe."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

#: Width when output is not a terminal: rich would otherwise assume 80 columns and cut cells with an ellipsis.
PIPE_WIDTH = 240


def console(*, stderr: bool = False) -> Console:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(file=stream)
    return Console(file=stream, width=PIPE_WIDTH, color_system=None, soft_wrap=False)
