"""overcast.events."""
