"""Helpers the fault tests share: a slow sequence to interrupt, and the processes a run leaves."""

from __future__ import annotations

from pathlib import Path

SLOW = """
from recotrig.algorithms.toy import Burn, SummaryWriter, ToyReader, TruthTracker
from recotrig.io.writers import StoreWriter

def build(*, input, output):
    return [ToyReader(events=400), Burn(work=300), TruthTracker(),
            StoreWriter(path=output + "/reco.root", collections=["tracks"]),
            SummaryWriter(path=output + "/summary.json", collections=["tracks"])]
"""


def children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
