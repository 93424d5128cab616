"""The returns flow (both ways): RMAs, refunds and credit memos, restocking."""
