"""Puts ``tests/`` on ``sys.path`` so that the spectra tests can ``import helpers``.

Tests run with ``--import-mode=importlib``, which adds no test directory to the path;
pytest loads this file in every xdist worker before it imports a test module.
"""

import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
