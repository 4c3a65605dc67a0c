"""What every model family's training shares (torch side): where the model goes, resumable
checkpoints, the epoch loop, the ONNX export, and the machine line of a card.

Where the model goes (``add_output_options``, ``model_output``): ``recotrig train`` writes
``NAME.onnx`` and its card into ``--output DIR``, by default ``recotrig-models/`` in the current
directory, and a sequence runs it by path (``--TrackFormerFinder.model recotrig-models/NAME.onnx``).
A model of the same name already there is kept unless ``--force``. The shipped models' folder
(``registry.SHIPPED``) is written only with ``--replace-shipped``: any other way of pointing there
is refused before the training starts. The files are written into a hidden folder beside the
model and move into place together once the training has ended well, so a failed or interrupted
training leaves the previous model as it was.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import shutil
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from recotrig.framework.files import commit, temporary_path, transaction
from recotrig.models.registry import SHIPPED, ModelError, write_card

__all__ = [
    "MODEL_SUFFIXES",
    "USER_MODELS",
    "Checkpoint",
    "ModelOutput",
    "add_output_options",
    "export_onnx",
    "model_output",
    "run_epochs",
    "training_entry",
]

#: where ``recotrig train`` writes a model unless ``--output`` says otherwise (in the current directory)
USER_MODELS = "recotrig-models"
#: the files of a model ``NAME``: ``NAME.onnx`` and its card
MODEL_SUFFIXES = (".onnx", ".card.json", ".card.md")


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """The flags saying where a trained model goes: ``--output``, ``--force``, ``--replace-shipped``."""
    group = parser.add_argument_group("where the model goes")
    group.add_argument(
        "--output",
        "--out",
        dest="output",
        metavar="DIR",
        default=None,
        help=f"folder for the model's ONNX file and card (default: {USER_MODELS}/ in the current "
        "directory); a sequence runs it with --ALG.model DIR/NAME.onnx",
    )
    group.add_argument("--force", action="store_true", help="replace a model of the same name in the folder")
    group.add_argument(
        "--replace-shipped",
        action="store_true",
        help="write into the shipped models' folder, replacing the shipped model of the same name",
    )


@dataclass(frozen=True)
class ModelOutput:
    """The files of model ``name`` in ``directory``; ``replace``: an existing model may be replaced."""

    name: str
    directory: Path
    replace: bool = False
    suffixes: tuple[str, ...] = MODEL_SUFFIXES

    @property
    def files(self) -> list[Path]:
        return [self.directory / f"{self.name}{suffix}" for suffix in self.suffixes]

    def check(self) -> None:
        """Refuse to replace an existing model unless allowed (``ModelError`` naming the file)."""
        if self.directory.exists() and not self.directory.is_dir():
            raise ModelError(f"{self.directory}: not a folder (--output names the folder the model goes to)")
        existing = [path for path in self.files if path.exists()] if not self.replace else []
        if existing:
            raise ModelError(
                f"{existing[0]} exists; choose another --name, or --force to replace the model "
                f"{self.name} in {self.directory}"
            )

    @contextlib.contextmanager
    def staged(self) -> Iterator[Path]:
        """A fresh hidden folder beside the model for the training to write the model's files into;
        when the block ends well they move into ``directory`` together (and the folder goes), else
        the folder is removed and nothing in ``directory`` changes."""
        self.directory.mkdir(parents=True, exist_ok=True)
        stage = temporary_path(self.directory / self.name)
        stage.mkdir()
        try:
            yield stage
            self.check()  # a model of this name may have appeared while this one trained
            written = sorted(path.name for path in stage.iterdir())
            with transaction():
                for name in written:
                    commit(stage / name, self.directory / name)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        print(f"wrote model {self.name} to {self.directory}/ ({', '.join(written)})")

    def write_retuned(self, onnx: Path, card: dict[str, Any]) -> None:
        """An existing model tuned again (``--retune``): its ONNX file copied here unchanged, beside
        its new ``card``, as a training writes its model (``staged``)."""
        with self.staged() as out:
            copy = out / f"{self.name}.onnx"
            shutil.copyfile(onnx, copy)
            write_card(copy, card)


def _inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def model_output(args: argparse.Namespace, name: str, suffixes: tuple[str, ...] = MODEL_SUFFIXES) -> ModelOutput:
    """Where model ``name`` goes for the ``add_output_options`` flags in ``args``, checked before
    any training: a plain file name, not into the shipped models' folder without
    ``--replace-shipped``, no existing model replaced without ``--force`` (``ModelError``)."""
    if not name or name in (".", "..") or any(c in name for c in "/\\\0"):
        raise ModelError(f"--name {name!r}: a model name is a file name (no folder, no / or \\)")
    directory = Path(args.output) if args.output is not None else SHIPPED if args.replace_shipped else Path(USER_MODELS)
    if args.replace_shipped and directory.resolve() != SHIPPED.resolve():
        raise ModelError(
            f"--replace-shipped writes into the shipped models' folder {SHIPPED}; leave out --output {args.output}"
        )
    if _inside(directory, SHIPPED) and not args.replace_shipped:
        where = "is" if directory.resolve() == SHIPPED.resolve() else "is inside"
        raise ModelError(
            f"{directory} {where} the shipped models' folder; a training writes there only with "
            f"--replace-shipped (default: {USER_MODELS}/ in the current directory)"
        )
    target = ModelOutput(name, directory, replace=args.force or args.replace_shipped, suffixes=suffixes)
    target.check()
    return target


#: this process's mark in the checkpoints it writes: a training's pieces are the processes that
#: trained at least one of its epochs
PIECE = uuid.uuid4().hex


class Checkpoint:
    """Model, optimiser and schedule state after an epoch, with the training time and loss so far
    and the pieces (processes) that trained it. ``config`` (JSON-able) describes the training; a
    checkpoint of another configuration is refused instead of resumed."""

    def __init__(self, path: Path, config: dict[str, Any] | None = None):
        self.path = path
        self.config = config
        self.pieces: list[str] = []

    def resume(self, model: torch.nn.Module, optimiser: Any, schedule: Any) -> tuple[int, float, float]:
        """(first epoch to run, seconds trained, last epoch's loss); (0, 0, NaN) without a checkpoint."""
        if not self.path.exists():
            return 0, 0.0, math.nan
        state = torch.load(self.path, weights_only=False)
        if state.get("config", self.config) != self.config:
            raise ValueError(
                f"{self.path}: a checkpoint of another training ({state['config']}); remove its "
                f"folder or choose another --name to train {self.config}"
            )
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        schedule.load_state_dict(state["schedule"])
        self.pieces = list(state.get("pieces", ["before pieces were recorded"]))
        return state["epoch"], state["seconds"], state.get("loss", math.nan)

    def save(
        self, model: torch.nn.Module, optimiser: Any, schedule: Any, *, epoch: int, seconds: float, loss: float
    ) -> None:
        if PIECE not in self.pieces:
            self.pieces.append(PIECE)
        torch.save(
            {
                "model": model.state_dict(),
                "optimiser": optimiser.state_dict(),
                "schedule": schedule.state_dict(),
                "epoch": epoch,
                "seconds": seconds,
                "loss": loss,
                "config": self.config,
                "pieces": self.pieces,
            },
            self.path,
        )


def run_epochs(
    model: torch.nn.Module,
    optimiser: Any,
    schedule: Any,
    checkpoint: Checkpoint,
    *,
    start: tuple[int, float, float],
    epochs: int,
    batches: Callable[[int], Iterable[tuple[Any, int]]],
    progress: bool = True,
    after_epoch: Callable[[int, float], None] | None = None,
    flush_denormals: bool = False,
) -> tuple[float, float]:
    """The epoch loop every family shares: from ``start`` (``Checkpoint.resume``'s first epoch,
    seconds and loss) to ``epochs``. ``batches(epoch)`` yields each batch's loss tensor and its
    number of events; each is back-propagated and stepped. After an epoch the schedule steps, the
    checkpoint is written and ``after_epoch(epochs done, mean loss)`` runs; a progress bar shows the
    loss and events/s. With ``flush_denormals`` torch computes the batches with denormal float32
    numbers flushed to zero (``torch.set_flush_denormal``, on this thread, set back after each
    epoch's batches): the TrackFormer's backward pass gives denormal gradients through the
    attention's smallest weights, and this CPU computes with them several times slower (a step
    4 times slower at 300 tracks). Returns the training seconds of all epochs (resumed ones
    included) and the last mean loss."""
    from tqdm.auto import tqdm

    first_epoch, seconds, loss_value = start
    bar = tqdm(total=epochs, initial=first_epoch, disable=not progress, unit="epoch")
    for epoch in range(first_epoch, epochs):
        t0 = time.perf_counter()
        model.train()
        total, count = 0.0, 0
        torch.set_flush_denormal(flush_denormals)
        try:
            for loss, n in batches(epoch):
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += loss.item() * n
                count += n
        finally:
            torch.set_flush_denormal(False)
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


def export_onnx(
    model: torch.nn.Module,
    example: tuple[torch.Tensor, ...],
    path: str | Path,
    *,
    inputs: list[str],
    outputs: list[str],
    dynamic_axes: dict[str, dict[int, str]],
) -> None:
    """ONNX (opset 17) through the TorchScript exporter (``dynamo=False``, deprecated by torch,
    hence the silenced warning): the one that keeps the hit axis of the TrackFormer encoder
    dynamic (shared/FACTS.md)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            example,
            str(path),
            input_names=inputs,
            output_names=outputs,
            opset_version=17,
            dynamo=False,
            dynamic_axes=dynamic_axes,
        )


def machine(threads: int) -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, {threads} torch threads, CPU"


def training_entry(seconds: float, threads: int, pieces: Iterable[str], **more: Any) -> dict[str, Any]:
    """A card's ``training``: its seconds (resumed epochs included), the machine, and in how many
    pieces it was trained (``pieces``: the ``Checkpoint.pieces`` of its checkpoints; a piece is one
    process, resuming the previous one's checkpoint)."""
    return {"seconds": round(seconds, 1), **more, "machine": machine(threads), "pieces": len(set(pieces))}
