"""``python -m genevae``."""

import sys

from genevae.cli import main

sys.exit(main())
