"""The products flow (ERP → store), prices included: rules, planning, the price guard."""
