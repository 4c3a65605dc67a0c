"""A training's card says in how many pieces (processes, each resuming the last checkpoint) it ran."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from recotrig.training import common
from recotrig.training.common import Checkpoint, run_epochs, training_entry


def _piece(path: Path, epochs: int) -> tuple[Checkpoint, float]:
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=3)
    checkpoint = Checkpoint(path, {"toy": 1})
    x = torch.ones(4, 2)

    def batches(epoch: int):
        yield ((model(x) - 1) ** 2).mean(), 4

    start = checkpoint.resume(model, optimiser, schedule)
    seconds, _ = run_epochs(
        model, optimiser, schedule, checkpoint, start=start, epochs=epochs, batches=batches, progress=False
    )
    return checkpoint, seconds


def test_pieces_count_the_processes_that_trained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "toy.pt"
    monkeypatch.setattr(common, "PIECE", "first")
    first, _ = _piece(path, epochs=1)
    assert training_entry(1.0, 1, first.pieces)["pieces"] == 1
    monkeypatch.setattr(common, "PIECE", "second")
    second, seconds = _piece(path, epochs=3)  # resumes at epoch 1, trains 2 and 3
    entry = training_entry(seconds, 1, second.pieces, final_loss=0.5)
    assert entry["pieces"] == 2 and entry["final_loss"] == 0.5 and "torch threads" in entry["machine"]
    assert torch.load(path, weights_only=False)["epoch"] == 3
    third, _ = _piece(path, epochs=3)  # nothing left to train: no new piece
    assert training_entry(0.0, 1, third.pieces)["pieces"] == 2
    # a training in two phases (the anomaly trainings: float, then quantisation-aware) counts each process once
    assert training_entry(0.0, 1, second.pieces + ["second"])["pieces"] == 2
