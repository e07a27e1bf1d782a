"""``python -m slipstream``: the same as the ``slipstream`` command."""

import sys

from .cli import main

sys.exit(main())
