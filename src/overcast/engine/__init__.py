"""overcast.engine."""
