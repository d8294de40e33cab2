"""overcast.plugins."""
