"""``python -m slipstream``: the same as the ``slipstream`` command."""

import sys

from ._impl.cli.main import main

sys.exit(main())
