"""Exact resume: checkpoints also carry the random number generators, so a resumed run continues the
interrupted one draw for draw.

Lightning checkpoints hold the weights, optimizer, schedulers and loop counters, but no RNG state: a
run resumed with shuffling, dropout and augmentation draws other numbers than the uninterrupted run
would have. ``ExactResume`` stores Python's, NumPy's and torch's (CPU and every CUDA device) generator
states with each checkpoint and puts them back at the start of the first training epoch after loading:
loading itself and the sanity-check validation draw numbers (each DataLoader iterator draws a worker
seed), so restoring at load time would be overwritten before the epoch starts.

The data order is part of that state: the training DataLoader's ``RandomSampler`` draws its permutation
seed from torch's generator when the epoch's iterator is created (after ``on_train_epoch_start``), and
under DDP ``DistributedSampler`` orders by ``seed + epoch``, which the restored loop counters give. The
checkpoint also records the epoch its RNG state belongs to.

Exact at epoch boundaries (the checkpoints ``ModelCheckpoint`` writes after validation). A checkpoint
written mid-epoch (on Ctrl-C or SIGTERM) resumes as Lightning resumes any mid-epoch checkpoint: the rest
of that epoch's steps, over a freshly drawn order.

Everything stored is tensors, lists, ints and strings, so checkpoints still load with
``torch.load(weights_only=True)``.
"""

import random
from typing import Any

import lightning as L
import numpy as np
import torch


def collect_rng_state() -> dict[str, Any]:
    """Every generator's state as plain values (no ndarray, no tuple of objects)."""
    version, keys, gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state = {
        "python": {"version": version, "state": list(keys), "gauss": gauss},
        "numpy": {
            "name": np_name,
            "keys": torch.from_numpy(np_keys.astype(np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "cached_gaussian": float(np_gauss),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state(
        (
            npy["name"],
            npy["keys"].numpy().astype(np.uint32),
            npy["pos"],
            npy["has_gauss"],
            npy["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


class ExactResume(L.Callback):
    """Saves the RNG states with every checkpoint and restores them when the resumed run's first
    training epoch starts (see the module docstring for why then)."""

    def __init__(self):
        self._pending: dict[str, Any] | None = None

    @property
    def state_key(self) -> str:
        return "ExactResume"

    def state_dict(self) -> dict[str, Any]:
        return {"rng": collect_rng_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        restore_rng_state(state_dict["rng"])
