"""Models of agents_app (filled in by its own feature work)."""
