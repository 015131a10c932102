"""``python -m neatify``: the ``neatify`` command (see docs/cli.md)."""

import sys

from neatify.cli.main import main

sys.exit(main())
