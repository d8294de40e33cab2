"""overcast.config."""
