"""The canonical model: what every connector translates to and from."""
