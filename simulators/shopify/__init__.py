"""The shopify simulator."""
