"""iVOMS gateway package."""
