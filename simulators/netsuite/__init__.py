"""The netsuite simulator."""
