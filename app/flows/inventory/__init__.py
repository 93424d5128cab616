"""The inventory flow (ERP → store): sellable stock, its rules, planning and hooks."""
