"""The custom simulator."""
