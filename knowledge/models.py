"""Models of knowledge (filled in by its own feature work)."""
