"""The house way to run a Lightning fit: quiet logs and one Trainer recipe.

    from hrlzoo.pipeline.lightning import make_trainer
    trainer = make_trainer(device, max_steps=300, progress=True, gradient_clip_val=1.0)

Importing this file does not import Lightning (each function does), so a module that only
may train can import it at the top. (`stages/heron/reward_model.py` predates this file and
keeps its own copy of `quiet_lightning`.)
"""

from __future__ import annotations

import logging
import warnings

_QUIET_MESSAGES = (".*does not have many workers.*", ".*GPU available but not used.*",
                   ".*is smaller than the logging interval.*", ".*`srun` command is available.*",
                   r".*isinstance\(treespec, LeafSpec\).*")


def quiet_lightning() -> None:
    """Silence Lightning's per-fit banner lines and its hints about data loader workers."""
    for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for msg in _QUIET_MESSAGES:
        warnings.filterwarnings("ignore", message=msg)


def make_trainer(device, *, max_steps: int = -1, max_epochs: int | None = None,
                 progress: bool = False, **kw):
    """A `pytorch_lightning.Trainer` on `device` (a torch.device or "cpu"/"cuda"), one device,
    no logger, no checkpoints, no validation, no model summary; `kw` overrides or adds."""
    import pytorch_lightning as pl
    import torch

    quiet_lightning()
    device = torch.device(device)
    args = dict(accelerator="gpu" if device.type == "cuda" else "cpu", devices=1, max_steps=max_steps,
                max_epochs=max_epochs if max_epochs is not None else (-1 if max_steps > 0 else None),
                logger=False, enable_checkpointing=False, enable_progress_bar=progress,
                enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0)
    args.update(kw)
    return pl.Trainer(**args)
