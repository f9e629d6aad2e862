"""iVOMS ivr package."""
