"""Generic storefront connector (``type: custom``): Standard Webhooks in both directions."""
