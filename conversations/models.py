"""Models of conversations (filled in by its own feature work)."""
