"""The ``callwatch`` command line: one module per subcommand; ``demo/`` holds the demo agent.

The entry point is :func:`callwatch.cli.main.main`.
"""

from __future__ import annotations

__all__: list[str] = []
