"""Plug-in contracts and the registry that finds implementations through entry points."""
