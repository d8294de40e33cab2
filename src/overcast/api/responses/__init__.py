"""overcast.api.responses."""
