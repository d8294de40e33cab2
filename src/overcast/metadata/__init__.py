"""overcast.metadata."""
