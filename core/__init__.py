"""iVOMS core package."""
