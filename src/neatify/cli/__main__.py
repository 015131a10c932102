"""``python -m neatify.cli``: the ``neatify`` command (the path it had as a module before the package split)."""

import sys

from neatify.cli.main import main

sys.exit(main())
