"""A run that is stopped loses nothing, and a diverged run stops before it overwrites good checkpoints.

Ctrl-C or SIGTERM during fit writes ``last.ckpt`` first:

Lightning turns Ctrl-C into ``KeyboardInterrupt`` at the end of the running batch and calls every
callback's ``on_exception`` before it exits. ``SaveOnInterrupt`` then writes the state of that step to
``last.ckpt`` in the run's checkpoint folder, where ``--ckpt_path last`` finds it, and says how to
resume. Other exceptions are bugs or bad input; they are not checkpointed (the last epoch's
``last.ckpt`` stays).

SIGTERM (what ``kill``, SLURM and Kubernetes send) is handled by ``SaveOnInterrupt`` itself, because
Lightning's handler deadlocks several processes of one run (DDP): it runs a collective broadcast inside
the signal handler, wherever the process happens to be (inside the gradient all-reduce, a validation
metric's sync, a checkpoint barrier), and each process then stops at its own check. cnnlab's handler
only sets a flag; at the end of every training, validation and test batch all processes agree on the
flag (one all-reduce of one number), so they stop at the same batch, save ``last.ckpt`` together and
exit with status 143, whichever of them got the signal and whenever it came.
"""

import shlex
import signal
import sys
import threading
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException

from cnnlab.checkpoint_io import remove_leftovers
from cnnlab.errors import UserError


def resume_command(argv: list[str]) -> str:
    """``argv`` as a ``cnnlab`` command line with ``--ckpt_path last`` in place of any ``--ckpt_path``."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--ckpt_path":
            skip = True
        elif not arg.startswith("--ckpt_path="):
            kept.append(arg)
    return shlex.join(["cnnlab", *kept, "--ckpt_path", "last"])


class SaveOnInterrupt(L.Callback):
    """On Ctrl-C or SIGTERM during fit: save ``last.ckpt`` and print where it is and how to resume."""

    def __init__(self):
        self.saved_to: str | None = None
        self._sigterm = False

    # -- SIGTERM: a flag, agreed on by every process at batch ends ------------------------------------
    def _take_sigterm(self, *_, **__) -> None:
        """In place of Lightning's handler (see the module docstring), whenever it installed its own."""
        if (
            signal.getsignal(signal.SIGTERM) != self._on_sigterm
            and threading.current_thread() is threading.main_thread()
        ):
            signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, signum, frame) -> None:
        self._sigterm = True  # nothing else here: any collective now could deadlock

    setup = on_sanity_check_start = on_train_start = on_validation_start = on_test_start = _take_sigterm

    def _agree(self, trainer, *_, **__) -> None:
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        if trainer.world_size > 1 and distributed:  # as Lightning's own per-step check, one number
            stop = torch.tensor([1.0 if self._sigterm else 0.0], device=trainer.strategy.root_device)
            torch.distributed.all_reduce(stop, op=torch.distributed.ReduceOp.MAX)
            # Only the handler writes the flag: a signal handled just after the all-reduce returned would
            # otherwise be overwritten by its result. It then counts at the next batch end, on every
            # process at once (stopping here alone would leave the others waiting in a collective).
            if stop.item() > 0:
                raise SIGTERMException()
        elif self._sigterm:
            raise SIGTERMException()

    on_train_batch_end = on_validation_batch_end = on_test_batch_end = _agree

    def teardown(self, trainer, pl_module, stage: str) -> None:
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGTERM) == self._on_sigterm
        ):
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def on_fit_start(self, trainer, pl_module) -> None:
        # a write that a crash or SIGKILL interrupted left a temporary file: remove it as the run starts again
        folder = _checkpoint_folder(trainer)
        if trainer.is_global_zero and folder:
            for path in remove_leftovers(folder):
                print(f"cnnlab: removed {path}, left by an interrupted checkpoint write", file=sys.stderr)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if not isinstance(exception, (KeyboardInterrupt, SIGTERMException)) or trainer.state.fn != "fit":
            return
        if trainer.sanity_checking or trainer.global_step == 0:
            return  # nothing trained yet
        folder = _checkpoint_folder(trainer)
        if folder is None:
            return
        path = str(Path(folder) / f"{ModelCheckpoint.CHECKPOINT_NAME_LAST}{ModelCheckpoint.FILE_EXTENSION}")
        trainer.save_checkpoint(path)
        self.saved_to = path
        if trainer.is_global_zero:
            print(
                f"cnnlab: interrupted at epoch {trainer.current_epoch} step {trainer.global_step}; "
                f"checkpoint saved to {path}; resume with: {resume_command(sys.argv[1:])}",
                file=sys.stderr,
                flush=True,
            )


def _checkpoint_folder(trainer) -> str | None:
    """The folder of the run's ``last.ckpt``: that of the checkpoint callback writing it, else the first."""
    callbacks = [c for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint) and c.dirpath]
    for callback in callbacks:
        if callback.filename == ModelCheckpoint.CHECKPOINT_NAME_LAST or callback.save_last:
            return callback.dirpath
    return callbacks[0].dirpath if callbacks else None


class NonFiniteLossError(UserError):
    """The training loss became NaN or infinite."""


class StopOnNonFiniteLoss(L.Callback):
    """Stops training with one line when the loss becomes NaN, infinite or exploded (above
    ``explode_at``), or the weights become NaN or infinite, before any checkpoint holds the broken weights.

    Every step ORs a "bad loss" flag on the loss's device (no host synchronisation); the flag is read
    on logging steps, before validation and before every checkpoint save. So training stops at most
    ``log_every_n_steps`` steps after the first bad loss, the message names that first step, and
    ``ModelCheckpoint`` (which saves after validation) never writes broken weights over the last good
    checkpoint.

    Args:
        explode_at: a training loss above this counts as diverged. A cross-entropy of 10,000 means logits
            apart by 10,000 on a wrong class: no healthy run gets there, while a diverging one (SGD at a
            learning rate of 1e30) reaches 1e30 and stays finite.
    """

    def __init__(self, explode_at: float = 1e4):
        self.explode_at = explode_at
        self._bad = self._first_step = self._epoch = self._loss = None

    def on_train_start(self, trainer, pl_module) -> None:
        self._bad = self._first_step = self._epoch = self._loss = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._step = trainer.global_step  # the step as Lightning counts it while computing this loss

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if not isinstance(loss, torch.Tensor):
            return
        loss = loss.detach().float()
        bad = ~torch.isfinite(loss) | (loss > self.explode_at)
        step = torch.tensor(self._step, device=loss.device)
        epoch = torch.tensor(trainer.current_epoch, device=loss.device)
        if self._bad is None:
            self._bad, self._first_step, self._epoch, self._loss = bad, step, epoch, loss
        else:  # keep the first bad step's numbers
            new = bad & ~self._bad
            self._first_step = torch.where(new, step, self._first_step)
            self._epoch = torch.where(new, epoch, self._epoch)
            self._loss = torch.where(new, loss, self._loss)
            self._bad = self._bad | bad
        every = trainer.log_every_n_steps
        if every > 0 and trainer.global_step % every == 0:
            self._check(trainer)

    def on_validation_start(self, trainer, pl_module) -> None:
        if trainer.state.fn == "fit" and not trainer.sanity_checking:
            self._check(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._check(trainer)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        self._check(trainer)  # raising here aborts the save: the atomic writer leaves the old file

    def _check(self, trainer) -> None:
        last = _last_checkpoint(trainer)
        hint = "lower the learning rate or set --trainer.gradient_clip_val"
        if self._bad is not None and bool(self._bad):
            value = "nan" if torch.isnan(self._loss) else f"{float(self._loss):.4g}"
            if torch.isfinite(self._loss):
                value += f" (above explode_at {self.explode_at:g}: training diverged)"
            raise NonFiniteLossError(
                f"loss became {value} at step {int(self._first_step)} (epoch {int(self._epoch)}); last good "
                f"checkpoint: {last or 'none yet'}; {hint}"
            )
        # An exploding loss can stay finite (saturated activations) while the weights overflow.
        params = [p.detach() for p in trainer.lightning_module.parameters()]
        if params and not bool(torch.stack([torch.isfinite(p).all() for p in params]).all()):
            raise NonFiniteLossError(
                f"the weights became infinite or nan by step {trainer.global_step} (epoch "
                f"{trainer.current_epoch}) though the loss stayed finite: training diverged; last good "
                f"checkpoint: {last or 'none yet'}; {hint}"
            )


def _last_checkpoint(trainer) -> str | None:
    folder = _checkpoint_folder(trainer)
    path = Path(folder) / "last.ckpt" if folder else None
    return str(path) if path is not None and path.is_file() else None
