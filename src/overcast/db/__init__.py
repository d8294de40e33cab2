"""overcast.db."""
