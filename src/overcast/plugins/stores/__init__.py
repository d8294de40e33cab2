"""Image store providers (entry point group ``overcast.storage.image``)."""
