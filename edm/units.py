"""Units used everywhere in recotrig, stated once.

Lengths are in millimetres, energies and momenta in GeV, times in nanoseconds, magnetic fields in
tesla, charges in units of e. A number without a unit in recotrig is in these units; the constants
below convert *into* them (``5 * um`` is 0.005 mm).
"""

mm = 1.0
cm = 10.0 * mm
m = 1000.0 * mm
um = 1e-3 * mm

GeV = 1.0
MeV = 1e-3 * GeV
TeV = 1e3 * GeV

ns = 1.0
ps = 1e-3 * ns

T = 1.0
