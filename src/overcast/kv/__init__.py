"""overcast.kv."""
