"""iVOMS billing package."""
