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


def save_npz(arrays: dict, path: str | os.PathLike, compress: bool = True) -> None:
    """Arrays into an .npz that `numpy.load` reads, with deterministic bytes: numpy's own
    `savez` stamps each member with the current time, this writes a fixed date instead."""
    import zipfile

    import numpy as np

    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", compression=method, compresslevel=1 if compress else None) as zf:
        for name, value in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = method
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asarray(value), allow_pickle=False)
