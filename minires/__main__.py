"""``python -m minires``: the same as the ``minires`` command."""

import sys

from .cli import main

sys.exit(main())
