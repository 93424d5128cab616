"""Operator decisions on held deliveries (price guard, amendments, over-shipments/returns)."""
