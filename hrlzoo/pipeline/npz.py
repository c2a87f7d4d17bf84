"""`.npz` files with deterministic bytes, so equal arrays give equal DVC hashes whichever engine
wrote them: numpy's own `savez` stamps each member with the current time; this writes a fixed
date, member by member (no whole-file copy in memory)."""

from __future__ import annotations

import os


def save_npz(arrays: dict, path: str | os.PathLike, compress: bool = True) -> None:
    """Write `arrays` (name -> array) to `path`; `numpy.load` reads it back."""
    import zipfile

    import numpy as np

    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", compression=method, compresslevel=1 if compress else None) as zf:
        for name, value in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = method
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asarray(value), allow_pickle=False)
