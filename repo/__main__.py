"""``python -m repo``: the same as the ``repo`` command."""

import sys

from ._cli import main

sys.exit(main())
