import os
import sys

# the helper module hessian_refs.py sits beside the tests (no package __init__ here)
sys.path.insert(0, os.path.dirname(__file__))
