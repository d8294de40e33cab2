"""overcast.cli."""
