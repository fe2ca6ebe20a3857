"""Models of campaigns (filled in by its own feature work)."""
