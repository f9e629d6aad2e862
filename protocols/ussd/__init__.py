"""iVOMS ussd package."""
