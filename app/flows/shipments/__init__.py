"""The shipments flow (ERP → store): packages, carriers, notifications."""
