"""hessian: (placeholder, see issues)."""
