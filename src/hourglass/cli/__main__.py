"""``python -m hourglass.cli``."""

import sys

from hourglass.cli import main

sys.exit(main())
