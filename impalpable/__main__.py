"""``python -m impalpable`` runs the ``impalpable`` command line."""

import sys

from .cli import main

sys.exit(main())
