"""Simulated store devices speaking the real protocols, for demos and end-to-end tests.

`run_simulation(settings)` runs a store from a planogram: load cells, fridges, footfall counters and
tills on MQTT (one connection per device), the legacy shelf controller on a serial PTY, shoppers from
a seeded population of households, staff restocking, and optionally malformed messages. Imports only
`sensors`.
"""

from simulators.errors import SimulatorError
from simulators.runner import run_simulation
from simulators.settings import SimulatorSettings
from simulators.summary import SimulationSummary

__all__ = ["SimulationSummary", "SimulatorError", "SimulatorSettings", "run_simulation"]
