"""Helpers shared by the channel adapters (none of them imports another adapter's package)."""
