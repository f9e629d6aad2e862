"""iVOMS administrator web GUI: Klein + Jinja2 pages on twisted.web, on their own listener."""
