"""Scheduled jobs: pollers, stock reconciliation, sale price schedule."""
