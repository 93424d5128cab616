"""The orders flow (store → ERP): its rules, planning and delivery-time hooks."""
