"""Overcast: an open cloud management server that speaks the Apache CloudStack API."""

__version__ = "0.1.0"
#: The CloudStack release whose API we implement; reported by listCapabilities.
CLOUDSTACK_VERSION = "4.22.0.0"

__all__ = ["CLOUDSTACK_VERSION", "__version__"]
