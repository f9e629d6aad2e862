"""iVOMS protocols package."""
