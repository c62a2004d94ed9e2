"""``python -m stagegate.readiness [--elapsed S] FILE...``: see :mod:`stagegate.readiness.explain`."""

import sys

from .explain import main

sys.exit(main())
