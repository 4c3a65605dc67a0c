"""SimulationReader: a Reader whose events are simulated on the fly (Pythia 8 -> Fatras -> digitization).

Event ``first_event + entry`` is made from ``(seed, event number)`` alone, so the sequencer can
spread entries over worker processes and still produce exactly the serial result. Every event is
of run ``run`` (default: the seed), so stores simulated with different seeds identify their events
apart, ``(run, event)``, and read together as one fileset even when both number from 0.
"""

from __future__ import annotations

from typing import Any

from recotrig.detector import DetectorSpec
from recotrig.edm import Hits, HitTruth, L1Objects, Particles, TruthVertices
from recotrig.framework import Option, Reader
from recotrig.framework.identity import EventKey
from recotrig.sim.simulate import Simulator


class SimulationReader(Reader):
    """Simulated events: Poisson(mu) minimum-bias pp at 14 TeV (+ optional hard scatter) through
    ACTS Fatras on the generic detector and ACTS smearing digitization, and the crossing's
    Level-1 trigger objects (``l1``)."""

    outputs = ("hits", "particles", "truth", "truth_vertices", "l1")
    requires = ("pyacts", "pythia8mc")
    events = Option(10, "number of events", low=1)
    first_event = Option(0, "event number of the first event", low=0)
    mu = Option(60.0, "mean number of minimum-bias interactions per crossing", low=0.0, high=1000.0)
    hard_scatter = Option("none", "hard-scatter process on top of the pile-up", choices=("none", "ttbar"))
    seed = Option(1, "run seed", low=0)
    run = Option(None, "run number recorded with every event (default: the seed)", type=int, low=0)
    beam_sigma_xy = Option(0.012, "beam spot sigma in x and y [mm]", low=0.0)
    beam_sigma_z = Option(45.0, "beam spot sigma in z [mm]", low=0.0)
    beam_sigma_t = Option(0.18, "beam spot sigma in t [ns]", low=0.0)
    field = Option(2.0, "solenoid field [T]", low=-10.0, high=10.0)
    noise = Option(False, "add noise hits")
    noise_fraction = Option(0.05, "noise hits per real hit (Poisson mean)", low=0.0)
    pt_min = Option(0.1, "generated particles below this pT [GeV] are not simulated", low=0.0)
    eta_max = Option(4.0, "generated particles beyond this |eta| are not simulated", low=0.0)

    def simulator(self) -> Simulator:
        return Simulator(
            mu=self.mu,
            hard_scatter=None if self.hard_scatter == "none" else self.hard_scatter,
            seed=self.seed,
            beam_sigma_xy=self.beam_sigma_xy,
            beam_sigma_z=self.beam_sigma_z,
            beam_sigma_t=self.beam_sigma_t,
            detector=DetectorSpec(field_T=self.field),
            noise=self.noise,
            noise_fraction=self.noise_fraction,
            pt_min=self.pt_min,
            eta_max=self.eta_max,
        )

    def metadata(self) -> dict[str, Any]:
        return self.simulator().metadata()

    def initialize(self) -> None:
        self._simulator = self.simulator()
        self._simulator.prepare()

    def n_events(self) -> int:
        return self.events

    def event_id(self, entry: int) -> int:
        return self.first_event + entry

    @property
    def run_number(self) -> int:
        return self.seed if self.run is None else self.run

    def event_key(self, entry: int) -> EventKey:
        return EventKey(self.run_number, self.event_id(entry))

    def read(self, entry: int) -> tuple[Hits, Particles, HitTruth, TruthVertices, L1Objects]:
        event = self._simulator.simulate(self.first_event + entry)
        return event["hits"], event["particles"], event["truth"], event["vertices"], event["l1"]
