"""``python -m hubbub.cli``: the ``hubbub`` command."""

import sys

from . import main

sys.exit(main())
