"""The simulator hypervisor: instant VM operations, with delays and failures injected on demand."""

from overcast.plugins.simulator.driver import SimulatorDriver

__all__ = ["SimulatorDriver"]
