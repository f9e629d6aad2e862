"""Loyalty plans: per-subscriber recharge counters, tiers and rewards (DESIGN §7)."""
