"""iVOMS soap package."""
