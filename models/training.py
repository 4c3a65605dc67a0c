"""What every model family's training shares (torch side): resumable checkpoints, the epoch loop,
the ONNX export, and the machine line of a card."""

from __future__ import annotations

import math
import os
import platform
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

__all__ = ["Checkpoint", "export_onnx", "machine", "run_epochs"]


class Checkpoint:
    """Model, optimiser and schedule state after an epoch, with the training time and loss so far.
    ``config`` (JSON-able) describes the training; a checkpoint of another configuration is
    refused instead of resumed."""

    def __init__(self, path: Path, config: dict[str, Any] | None = None):
        self.path = path
        self.config = config

    def resume(self, model: torch.nn.Module, optimiser: Any, schedule: Any) -> tuple[int, float, float]:
        """(first epoch to run, seconds trained, last epoch's loss); (0, 0, NaN) without a checkpoint."""
        if not self.path.exists():
            return 0, 0.0, math.nan
        state = torch.load(self.path, weights_only=False)
        if state.get("config", self.config) != self.config:
            raise ValueError(f"{self.path}: a checkpoint of another training ({state['config']}); remove its "
                             f"folder or choose another --name to train {self.config}")
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        schedule.load_state_dict(state["schedule"])
        return state["epoch"], state["seconds"], state.get("loss", math.nan)

    def save(self, model: torch.nn.Module, optimiser: Any, schedule: Any, *, epoch: int, seconds: float,
             loss: float) -> None:
        torch.save({"model": model.state_dict(), "optimiser": optimiser.state_dict(),
                    "schedule": schedule.state_dict(), "epoch": epoch, "seconds": seconds, "loss": loss,
                    "config": self.config}, self.path)


def run_epochs(model: torch.nn.Module, optimiser: Any, schedule: Any, checkpoint: Checkpoint, *,
               start: tuple[int, float, float], epochs: int, batches: Callable[[int], Iterable[tuple[Any, int]]],
               progress: bool = True, after_epoch: Callable[[int, float], None] | None = None) -> tuple[float, float]:
    """The epoch loop every family shares: from ``start`` (``Checkpoint.resume``'s first epoch,
    seconds and loss) to ``epochs``. ``batches(epoch)`` yields each batch's loss tensor and its
    number of events; each is back-propagated and stepped. After an epoch the schedule steps, the
    checkpoint is written and ``after_epoch(epochs done, mean loss)`` runs; a progress bar shows the
    loss and events/s. Returns the training seconds of all epochs (resumed ones included) and the
    last mean loss."""
    from tqdm.auto import tqdm

    first_epoch, seconds, loss_value = start
    bar = tqdm(total=epochs, initial=first_epoch, disable=not progress, unit="epoch")
    for epoch in range(first_epoch, epochs):
        t0 = time.perf_counter()
        model.train()
        total, count = 0.0, 0
        for loss, n in batches(epoch):
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * n
            count += n
        schedule.step()
        elapsed = time.perf_counter() - t0
        seconds += elapsed
        loss_value = total / max(count, 1)
        bar.set_postfix(loss=f"{loss_value:.4f}", events_per_s=f"{count / elapsed:.0f}")
        bar.update(1)
        checkpoint.save(model, optimiser, schedule, epoch=epoch + 1, seconds=seconds, loss=loss_value)
        if after_epoch is not None:
            after_epoch(epoch + 1, loss_value)
    bar.close()
    return seconds, loss_value


def export_onnx(model: torch.nn.Module, example: tuple[torch.Tensor, ...], path: str | Path, *,
                inputs: list[str], outputs: list[str], dynamic_axes: dict[str, dict[int, str]]) -> None:
    """ONNX (opset 17) through the TorchScript exporter (``dynamo=False``, deprecated by torch,
    hence the silenced warning): the one that keeps the hit axis of the TrackFormer encoder
    dynamic (shared/FACTS.md)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, example, str(path), input_names=inputs, output_names=outputs, opset_version=17,
                          dynamo=False, dynamic_axes=dynamic_axes)


def machine(threads: int) -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, {threads} torch threads, CPU"
