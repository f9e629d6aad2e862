"""iVOMS admin package."""
