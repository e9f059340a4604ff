"""``python -m callwatch.cli``: the same as the ``callwatch`` command."""

from __future__ import annotations

import sys

from callwatch.cli.main import main

sys.exit(main())
