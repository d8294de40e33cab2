"""overcast.access."""
