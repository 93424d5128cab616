"""Business rules per flow: pure functions over canonical models (no database, no HTTP)."""
