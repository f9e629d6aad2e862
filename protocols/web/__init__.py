"""iVOMS web package."""
