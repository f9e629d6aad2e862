"""Diameter credit-control connector: pure L{message} layer and twisted L{node} layer.

@see: docs/architecture.md, section "The Diameter split".
"""
