"""``python -m hourglass``: the command line."""

import sys

from hourglass.cli import main

sys.exit(main())
