"""iVOMS smpp package."""
