"""Subscriber Web and WAP (XHTML-MP) recharge pages."""
