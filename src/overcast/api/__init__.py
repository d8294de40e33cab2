"""overcast.api."""
