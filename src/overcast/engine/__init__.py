"""Cloud-Engine: orchestration of zones, hosts, VMs, volumes and networks on plug-in drivers."""
