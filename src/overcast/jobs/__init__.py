"""overcast.jobs."""
