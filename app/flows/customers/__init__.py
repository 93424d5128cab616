"""The customers flow (both ways): ownership of fields, duplicates, erase requests."""
