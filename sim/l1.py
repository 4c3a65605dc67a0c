"""Level-1 trigger objects from the full generator final state: an L1-like calorimeter and muon
system, anti-kT jets (fastjet), isolated e/gamma, muons and missing ET.

Two stages, so that pile-up can be premixed:

1. ``L1Response.deposit`` turns the final-state particles of many interactions into *deposits*:
   per interaction, the calorimeter towers hit (index, smeared ET) and the e/gamma and muon
   candidates (smeared pT, eta, phi, efficiency applied). This is where every random number is
   drawn. A minimum-bias pool stores deposits (``sim.premix``).
2. ``L1Response.build`` overlays the deposits of the interactions of each crossing (a hard scatter
   and Poisson(mu) pile-up interactions, fresh or drawn from a pool), sums the towers, and builds the
   objects: it is deterministic.

The detector model (CMS-like numbers, order of magnitude of the Phase-1 L1 trigger; not a fit):

* Towers of 0.0870 x 0.0873 (115 eta rings over |eta| < 5, 72 in phi); a tower's ET counts only
  above ``tower_threshold`` = 1 GeV after the overlay.
* Electrons and photons deposit with sigma/E = 10 %/sqrt(E) + 1 % (in quadrature), every other
  visible particle with 100 %/sqrt(E) + 5 % (Gamma-distributed, so the mean is the true energy);
  muons and neutrinos deposit nothing. Charged
  particles are bent in a 3.8 T field up to the calorimeter face (r = 1.29 m, |z| = 3.2 m); those
  whose helix diameter is below the face radius (pT < 0.74 GeV in the barrel) never reach it.
* e/gamma: true electrons and photons with pT > 3 GeV, |eta| < 3, 95 % efficient, ET as deposited;
  kept when isolated: ET in the 7 x 7 towers around it minus its own ET and the pile-up density
  below 0.5 x its ET.
* Muons: true muons with pT > 3 GeV, |eta| < 2.4, 95 % efficient, sigma(pT)/pT = 15 %,
  sigma(eta) = sigma(phi) = 0.02. Isolation as for e/gamma, recorded (``iso``), not cut.
* Jets: anti-kT R = 0.4 over the towers above threshold (massless, at the tower centre); pile-up
  subtracted with the median tower ET density rho of 4 x 4-tower patches in |eta| < 3 times the
  nominal area pi R^2; kept above 15 GeV and |eta| < 4.
* Missing ET: minus the vector sum of the towers above threshold and of the L1 muons.

Acceptances and thresholds are the ADC2021 data set's (e/gamma pT > 3 GeV, |eta| < 3; muons
pT > 3 GeV; jets pT > 15 GeV, |eta| < 4).
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

import numpy as np

from recotrig.edm.trigger import L1_SLOTS, L1Objects

__all__ = ["Deposits", "L1Batch", "L1Response"]

_EM = (11, 22)
_INVISIBLE = (12, 14, 16)
_MUON = 13


@dataclass
class Deposits:
    """Deposits of many interactions as CSR tables: ``<table>_offsets`` (n_interactions + 1) index
    the rows of each table. Tables: ``tower`` (index, et), ``eg`` (pt, eta, phi, tower), ``mu`` (pt,
    eta, phi, tower)."""

    tower_offsets: np.ndarray
    tower_index: np.ndarray  # i4
    tower_et: np.ndarray  # f4
    eg_offsets: np.ndarray
    eg_pt: np.ndarray
    eg_eta: np.ndarray
    eg_phi: np.ndarray
    eg_tower: np.ndarray
    mu_offsets: np.ndarray
    mu_pt: np.ndarray
    mu_eta: np.ndarray
    mu_phi: np.ndarray
    mu_tower: np.ndarray

    TABLES = {"tower": ("index", "et"), "eg": ("pt", "eta", "phi", "tower"), "mu": ("pt", "eta", "phi", "tower")}

    def __len__(self) -> int:
        return len(self.tower_offsets) - 1

    def to_dict(self) -> dict[str, np.ndarray]:
        return dict(self.__dict__)

    @classmethod
    def concat(cls, parts: list[Deposits]) -> Deposits:
        out = {}
        for table, columns in cls.TABLES.items():
            offsets = [np.zeros(1, np.int64)]
            base = 0
            for p in parts:
                o = getattr(p, f"{table}_offsets")
                offsets.append(o[1:] + base)
                base += int(o[-1])
            out[f"{table}_offsets"] = np.concatenate(offsets)
            for c in columns:
                out[f"{table}_{c}"] = np.concatenate([getattr(p, f"{table}_{c}") for p in parts])
        return cls(**out)

    def total_et(self) -> np.ndarray:
        """Each interaction's summed tower ET [GeV] (float64)."""
        sums = np.concatenate([[0.0], np.cumsum(self.tower_et, dtype=np.float64)])
        return sums[self.tower_offsets[1:]] - sums[self.tower_offsets[:-1]]

    def gather(self, table: str, events: np.ndarray, owner: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The rows of ``table`` of the interactions ``events`` (repeats allowed) and, per row, the
        ``owner`` entry of its interaction (e.g. the crossing it goes to)."""
        offsets = getattr(self, f"{table}_offsets")
        start, stop = offsets[events], offsets[events + 1]
        counts = stop - start
        total = int(counts.sum())
        first = np.cumsum(counts) - counts
        rows = np.arange(total, dtype=np.int64) - np.repeat(first - start, counts)
        return {c: getattr(self, f"{table}_{c}")[rows] for c in self.TABLES[table]}, np.repeat(owner, counts)


@dataclass
class L1Batch:
    """L1 objects of a batch of crossings, as flat object rows with their crossing (``event``)."""

    n_events: int
    event: np.ndarray
    kind: np.ndarray
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    iso: np.ndarray
    n_pileup: np.ndarray | None = None  # per crossing, where the producer knows it

    def _bounds(self) -> np.ndarray:
        return np.searchsorted(self.event, np.arange(self.n_events + 1))

    def objects(self) -> list[L1Objects]:
        """Per crossing, its ``L1Objects``."""
        bounds = self._bounds()
        return [
            L1Objects(kind=self.kind[a:b], pt=self.pt[a:b], eta=self.eta[a:b], phi=self.phi[a:b], iso=self.iso[a:b])
            for a, b in itertools.pairwise(bounds)
        ]

    def features(self) -> np.ndarray:
        """(n_events, 57) float32 inputs in the AXOL1TL layout (rows are already pT-ordered)."""
        out = np.zeros((self.n_events, sum(n for _, n in L1_SLOTS), 3), np.float32)
        slot0 = 0
        for kind, n in L1_SLOTS:
            sel = np.flatnonzero(self.kind == L1Objects.KINDS[kind])
            ev = self.event[sel]
            rank = np.arange(len(sel)) - np.searchsorted(ev, ev)  # rows are grouped by event, pT-ordered
            keep = rank < n
            slot = slot0 + rank[keep]
            out[ev[keep], slot, 0] = self.pt[sel][keep]
            out[ev[keep], slot, 1] = self.eta[sel][keep]
            out[ev[keep], slot, 2] = self.phi[sel][keep]
            slot0 += n
        return out.reshape(self.n_events, -1)

    def lepton_filter(self, pt_min: float = 23.0, iso_max: float = 0.5) -> np.ndarray:
        """Per crossing: has an e/gamma or a loosely isolated muon (iso < ``iso_max``) above
        ``pt_min`` (the ADC2021 single-lepton selection)."""
        kinds = L1Objects.KINDS
        lepton = ((self.kind == kinds["electron"]) | ((self.kind == kinds["muon"]) & (self.iso < iso_max))) & (
            self.pt > pt_min
        )
        return np.bincount(self.event[lepton], minlength=self.n_events) > 0


@dataclass(frozen=True)
class L1Response:
    """The L1 detector model and object definitions (see the module docstring for the numbers)."""

    n_eta: int = 115
    n_phi: int = 72
    calo_eta_max: float = 5.0
    field_T: float = 3.8
    calo_radius_m: float = 1.29
    calo_z_m: float = 3.2
    em_stochastic: float = 0.10
    em_constant: float = 0.01
    had_stochastic: float = 1.00
    had_constant: float = 0.05
    tower_threshold: float = 1.0
    eg_pt_min: float = 3.0
    eg_eta_max: float = 3.0
    eg_efficiency: float = 0.95
    eg_iso_max: float = 0.5
    iso_half_width: int = 3
    mu_pt_min: float = 3.0
    mu_eta_max: float = 2.4
    mu_efficiency: float = 0.95
    mu_pt_resolution: float = 0.15
    mu_angle_resolution: float = 0.02
    jet_r: float = 0.4
    jet_pt_min: float = 15.0
    jet_eta_max: float = 4.0
    rho_eta_max: float = 3.0
    rho_patch: int = 4

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def n_towers(self) -> int:
        return self.n_eta * self.n_phi

    @property
    def d_eta(self) -> float:
        return 2 * self.calo_eta_max / self.n_eta

    @property
    def d_phi(self) -> float:
        return 2 * np.pi / self.n_phi

    def tower_of(self, eta: np.ndarray, phi: np.ndarray) -> np.ndarray:
        ie = np.floor((eta + self.calo_eta_max) / self.d_eta).astype(np.int64)
        ip = np.floor((np.mod(phi + np.pi, 2 * np.pi)) / self.d_phi).astype(np.int64) % self.n_phi
        return (np.clip(ie, 0, self.n_eta - 1) * self.n_phi + ip).astype(np.int32)

    def tower_centres(self) -> tuple[np.ndarray, np.ndarray]:
        eta = -self.calo_eta_max + (np.arange(self.n_eta) + 0.5) * self.d_eta
        phi = -np.pi + (np.arange(self.n_phi) + 0.5) * self.d_phi
        return np.repeat(eta, self.n_phi), np.tile(phi, self.n_eta)

    # -- stage 1 --------------------------------------------------------------------------------
    def deposit(self, particles: dict[str, np.ndarray], counts: np.ndarray, rng: np.random.Generator) -> Deposits:
        """Deposits of interactions whose final-state particles (pdg, q, px, py, pz, e; flat,
        ``counts`` per interaction) are given."""
        counts = np.asarray(counts, np.int64)
        owner = np.repeat(np.arange(len(counts)), counts)
        pdg = np.abs(np.asarray(particles["pdg"]))
        q = np.asarray(particles["q"], np.float64)
        px, py, pz, e = (np.asarray(particles[k], np.float64) for k in ("px", "py", "pz", "e"))
        pt = np.hypot(px, py)
        with np.errstate(divide="ignore", invalid="ignore"):
            eta = np.where(pt > 0, np.arcsinh(pz / np.where(pt > 0, pt, 1.0)), np.sign(pz) * 99.0)
        phi = np.arctan2(py, px)
        n = len(pdg)
        u_eff, g_pt, g_eta, g_phi = (rng.random(n), *rng.standard_normal((3, n)))

        # calorimeter: bend charged particles to the face, drop those that never reach it
        face_r = np.minimum(self.calo_radius_m, self.calo_z_m / np.maximum(np.abs(np.sinh(eta)), 1e-9))
        arg = 0.3 * self.field_T * face_r / (2.0 * np.maximum(pt, 1e-9))
        charged = q != 0
        reaches = ~charged | (arg < 1.0)
        phi_calo = np.where(charged, phi - q * np.arcsin(np.minimum(arg, 1.0)), phi)
        em = np.isin(pdg, _EM)
        calo = reaches & ~np.isin(pdg, (*_INVISIBLE, _MUON)) & (np.abs(eta) < self.calo_eta_max)
        stoch = np.where(em, self.em_stochastic, self.had_stochastic)
        const = np.where(em, self.em_constant, self.had_constant)
        rel = np.sqrt(stoch**2 / np.maximum(e, 1e-9) + const**2)
        shape = 1.0 / rel**2  # Gamma-distributed response: mean E, sigma rel * E, never negative
        e_meas = rng.gamma(shape) * (e / shape)
        et = e_meas / np.cosh(np.clip(eta, -50, 50))
        tower = self.tower_of(eta, phi_calo)
        c = calo & (et > 0)

        eg = em & c & (et > self.eg_pt_min) & (np.abs(eta) < self.eg_eta_max) & (u_eff < self.eg_efficiency)
        mu_pt = pt * (1.0 + self.mu_pt_resolution * g_pt)
        mu_eta = eta + self.mu_angle_resolution * g_eta
        mu_phi = np.mod(phi + self.mu_angle_resolution * g_phi + np.pi, 2 * np.pi) - np.pi
        mu = (pdg == _MUON) & (mu_pt > self.mu_pt_min) & (np.abs(eta) < self.mu_eta_max) & (u_eff < self.mu_efficiency)

        def offsets(mask: np.ndarray) -> np.ndarray:
            return np.concatenate([[0], np.cumsum(np.bincount(owner[mask], minlength=len(counts)))]).astype(np.int64)

        def pt_order(mask: np.ndarray, value: np.ndarray) -> np.ndarray:
            rows = np.flatnonzero(mask)
            return rows[np.lexsort((-value[rows], owner[rows]))]

        eg_rows, mu_rows = pt_order(eg, et), pt_order(mu, mu_pt)
        return Deposits(
            tower_offsets=offsets(c),
            tower_index=tower[c],
            tower_et=et[c].astype(np.float32),
            eg_offsets=offsets(eg),
            eg_pt=et[eg_rows].astype(np.float32),
            eg_eta=eta[eg_rows].astype(np.float32),
            eg_phi=phi_calo[eg_rows].astype(np.float32),
            eg_tower=tower[eg_rows],
            mu_offsets=offsets(mu),
            mu_pt=mu_pt[mu_rows].astype(np.float32),
            mu_eta=mu_eta[mu_rows].astype(np.float32),
            mu_phi=mu_phi[mu_rows].astype(np.float32),
            mu_tower=self.tower_of(eta[mu_rows], phi[mu_rows]),
        )

    # -- stage 2 --------------------------------------------------------------------------------
    def build(self, n_events: int, sources: list[tuple[Deposits, np.ndarray, np.ndarray]]) -> L1Batch:
        """L1 objects of ``n_events`` crossings. ``sources``: (deposits, interactions, crossing)
        triples: interaction ``interactions[k]`` of ``deposits`` goes into crossing ``crossing[k]``."""
        import awkward as ak
        import fastjet

        nt = self.n_towers
        grid = np.zeros(n_events * nt, np.float64)
        egs, mus = [], []
        for deposits, events, crossing in sources:
            events, crossing = np.asarray(events, np.int64), np.asarray(crossing, np.int64)
            towers, owner = deposits.gather("tower", events, crossing)
            grid += np.bincount(owner * nt + towers["index"], weights=towers["et"], minlength=n_events * nt)
            egs.append(deposits.gather("eg", events, crossing))
            mus.append(deposits.gather("mu", events, crossing))
        grid[grid < self.tower_threshold] = 0.0
        grid = grid.reshape(n_events, self.n_eta, self.n_phi)

        # pile-up density per tower: median of 4x4-tower patch sums in |eta| < rho_eta_max
        centre = -self.calo_eta_max + (np.arange(self.n_eta) + 0.5) * self.d_eta
        rings = np.flatnonzero(np.abs(centre) < self.rho_eta_max)
        p = self.rho_patch
        rings = rings[: len(rings) // p * p]
        patches = grid[:, rings, :].reshape(n_events, len(rings) // p, p, self.n_phi // p, p).sum(axis=(2, 4))
        rho = np.median(patches.reshape(n_events, -1), axis=1) / (p * p)  # GeV per tower

        # jets
        ev, it = np.nonzero(grid.reshape(n_events, nt))
        et = grid.reshape(n_events, nt)[ev, it]
        eta_c, phi_c = self.tower_centres()
        counts = np.bincount(ev, minlength=n_events)
        towers = ak.unflatten(
            ak.zip(
                {
                    "px": et * np.cos(phi_c[it]),
                    "py": et * np.sin(phi_c[it]),
                    "pz": et * np.sinh(eta_c[it]),
                    "E": et * np.cosh(eta_c[it]),
                }
            ),
            counts,
        )
        rows = {k: [] for k in ("event", "kind", "pt", "eta", "phi", "iso")}
        if len(et):
            sequence = fastjet.ClusterSequence(towers, fastjet.JetDefinition(fastjet.antikt_algorithm, self.jet_r))
            jets = sequence.inclusive_jets(min_pt=self.jet_pt_min)
            jet_event = np.repeat(np.arange(n_events), np.asarray(ak.num(jets, axis=1)))
            jpx, jpy, jpz = (np.asarray(ak.flatten(jets[c]), np.float64) for c in ("px", "py", "pz"))
            jpt = np.hypot(jpx, jpy)
            jeta = np.arcsinh(jpz / np.maximum(jpt, 1e-9))
            area = np.pi * self.jet_r**2 / (self.d_eta * self.d_phi)
            jpt_sub = jpt - rho[jet_event] * area
            keep = (jpt_sub > self.jet_pt_min) & (np.abs(jeta) < self.jet_eta_max)
            self._add(
                rows,
                L1Objects.KINDS["jet"],
                jet_event[keep],
                jpt_sub[keep],
                jeta[keep],
                np.arctan2(jpy, jpx)[keep],
                np.zeros(int(keep.sum())),
            )

        # e/gamma and muons with their isolation
        flat = grid.reshape(n_events, nt)
        candidates = {}
        for kind, parts in (("electron", egs), ("muon", mus)):
            cols = {c: np.concatenate([p[0][c] for p in parts]) for c in ("pt", "eta", "phi", "tower")}
            owner = np.concatenate([p[1] for p in parts])
            own_et = cols["pt"] if kind == "electron" else 0.0  # muons leave no energy in the towers
            iso = self._isolation(flat, rho, owner, cols["tower"]) - own_et
            rel = np.maximum(iso, 0.0) / np.maximum(cols["pt"], 1e-9)
            keep = rel < self.eg_iso_max if kind == "electron" else np.ones(len(rel), bool)
            self._add(
                rows,
                L1Objects.KINDS[kind],
                owner[keep],
                cols["pt"][keep],
                cols["eta"][keep],
                cols["phi"][keep],
                rel[keep],
            )
            candidates[kind] = (cols, owner)

        # missing ET: the towers and the L1 muons
        mu, mu_owner = candidates["muon"]
        mex = -np.bincount(ev, weights=et * np.cos(phi_c[it]), minlength=n_events) - np.bincount(
            mu_owner, weights=mu["pt"] * np.cos(mu["phi"]), minlength=n_events
        )
        mey = -np.bincount(ev, weights=et * np.sin(phi_c[it]), minlength=n_events) - np.bincount(
            mu_owner, weights=mu["pt"] * np.sin(mu["phi"]), minlength=n_events
        )
        self._add(
            rows,
            L1Objects.KINDS["met"],
            np.arange(n_events),
            np.hypot(mex, mey),
            np.zeros(n_events),
            np.arctan2(mey, mex),
            np.zeros(n_events),
        )

        out = {k: np.concatenate(v) for k, v in rows.items()}
        order = np.lexsort((-out["pt"], out["kind"], out["event"]))
        return L1Batch(
            n_events=n_events,
            event=out["event"][order].astype(np.int64),
            kind=out["kind"][order].astype(np.int32),
            pt=out["pt"][order],
            eta=out["eta"][order],
            phi=out["phi"][order],
            iso=out["iso"][order],
        )

    @staticmethod
    def _add(rows: dict, kind: int, event, pt, eta, phi, iso) -> None:
        rows["event"].append(np.asarray(event, np.int64))
        rows["kind"].append(np.full(len(rows["event"][-1]), kind, np.int32))
        for k, v in (("pt", pt), ("eta", eta), ("phi", phi), ("iso", iso)):
            rows[k].append(np.asarray(v, np.float64))

    def _isolation(self, flat: np.ndarray, rho: np.ndarray, owner: np.ndarray, tower: np.ndarray) -> np.ndarray:
        """ET in the (2w+1)^2 towers around each candidate's tower, minus rho times their number."""
        w = self.iso_half_width
        ie, ip = np.divmod(tower.astype(np.int64), self.n_phi)
        total = np.zeros(len(tower))
        inside = np.zeros(len(tower))
        for de in range(-w, w + 1):
            e2 = ie + de
            ok = (e2 >= 0) & (e2 < self.n_eta)
            for dp in range(-w, w + 1):
                idx = np.clip(e2, 0, self.n_eta - 1) * self.n_phi + (ip + dp) % self.n_phi
                total += np.where(ok, flat[owner, idx], 0.0)
                inside += ok
        return total - rho[owner] * inside
