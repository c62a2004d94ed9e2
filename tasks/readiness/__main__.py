"""``python -m tasks.readiness [--elapsed S] FILE...``: see :mod:`tasks.readiness.explain`."""

import sys

from tasks.readiness.explain import main

sys.exit(main())
