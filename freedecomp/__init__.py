"""freedecomp: (placeholder, see issues)."""
