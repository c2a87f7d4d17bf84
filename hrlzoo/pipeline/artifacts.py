"""Artifact formats with deterministic bytes: the same content gives the same file, so DVC's
hashes agree between `dvc repro` and Snakemake runs."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any


def save_pt(obj: Any, path: str | os.PathLike) -> None:
    """torch.save through a buffer: the zip's inner folder name is fixed, not the file's name."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    Path(path).write_bytes(buf.getvalue())


def load_pt(path: str | os.PathLike, device: Any = "cpu") -> Any:
    import torch

    return torch.load(path, map_location=device, weights_only=False)
