"""``TensorBoardPictures``: what the network learned, as pictures in TensorBoard's Images, Histograms and
HParams tabs.

Everything is drawn at epoch ends (nothing per training step beyond a few tensor operations on the
device during tests) and only when the run logs to a ``TensorBoardLogger``: without one (``--trainer.logger
false``, ``fast_dev_run``) the callback does nothing.

Image tags (step: the global step when drawn):

* ``test/confusion_matrix``, ``test/per_class_accuracy``, ``test/misclassified``: at the end of a test;
* ``filters/<layer>``: the first convolution's filters, ``feature_maps/<i>_<layer>`` (and
  ``feature_maps/input``): the outputs of the first convolutions for one fixed validation image; at the
  end of validation every ``every_n_epochs`` epochs;

histograms ``weights/<parameter>`` and ``gradients/<parameter>`` every ``histogram_every_n_epochs``
epochs, and the run's hyperparameters with ``hp/val_acc_best`` and ``hp/test_*`` in the HParams tab.
"""

import functools
import warnings

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import TensorBoardLogger
from torch import nn
from torch.utils.tensorboard.summary import hparams as hparams_summary
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix
from torchvision.utils import make_grid

from cnnlab.callbacks.evaluation_report import class_names_of
from cnnlab.plots import bar_figure, confusion_matrix_figure, image_grid_figure, to_array

TILE = 96  # smallest side, in pixels, of a filter or feature map tile, so 3x3 kernels are visible
MAX_TILES = 64  # filters or channels shown per layer
# HParams metrics from the test, by the logged metric they repeat.
TEST_HPARAMS = {"hp/test_acc": "test/acc", "hp/test_loss": "test/loss", "hp/test_f1": "test/f1"}


def tensorboard_logger(trainer: L.Trainer) -> TensorBoardLogger | None:
    return next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)


def conv_layers(module: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    """The 2-d convolutions in the order they were registered (for the usual models, forward order)."""
    found = [(name, m) for name, m in module.named_modules() if isinstance(m, nn.Conv2d)]
    return [(name.removeprefix("model."), m) for name, m in found]


def tile_grid(tiles: torch.Tensor, nrow: int = 8) -> torch.Tensor:
    """N x C x h x w (C = 1 or 3) -> one 3 x H x W grid image in 0..1, each tile stretched to its own
    range and enlarged to at least ``TILE`` pixels."""
    tiles = tiles[:MAX_TILES].detach().float().cpu()
    low = tiles.amin(dim=(1, 2, 3), keepdim=True)
    high = tiles.amax(dim=(1, 2, 3), keepdim=True)
    tiles = (tiles - low) / (high - low).clamp_min(1e-8)  # as make_grid's scale_each, in one operation
    scale = max(1, -(-TILE // min(tiles.shape[-2:])))
    if scale > 1:
        tiles = F.interpolate(tiles, scale_factor=scale, mode="nearest")
    return make_grid(tiles, nrow=nrow, padding=2, pad_value=1.0)


def filter_grid(conv: nn.Conv2d) -> torch.Tensor:
    """A convolution's filters as tiles: in colour for 3 input channels, else their first channel."""
    weight = conv.weight.detach()
    tiles = weight if weight.shape[1] == 3 else weight[:, :1]
    return tile_grid(tiles)


def feature_map_grid(output: torch.Tensor) -> torch.Tensor:
    """One image's feature maps (C x H x W) as grey tiles."""
    return tile_grid(output[:MAX_TILES, None])


def feature_maps_of(module: nn.Module, image: torch.Tensor, convs) -> dict[str, torch.Tensor]:
    """The outputs of the convolutions ``convs`` (name, layer) for ``image``, from forward hooks."""
    outputs: dict[str, torch.Tensor] = {}

    def keep(name):
        def hook(layer, args, output):
            outputs.setdefault(name, output.detach())  # the first call: tta runs the model twice

        return hook

    handles = [conv.register_forward_hook(keep(name)) for name, conv in convs]
    was_training = module.training
    module.eval()
    try:
        # Eager even under --model.compile: hooks and a batch of one would make torch.compile recompile.
        with torch.no_grad(), torch.compiler.set_stance("force_eager"):
            module(image.to(next(module.parameters()).device))
    finally:
        for handle in handles:
            handle.remove()
        module.train(was_training)
    return outputs


def layer_pictures(
    module: nn.Module, image: torch.Tensor | None, filters: bool = True, feature_maps: int = 3
) -> dict[str, torch.Tensor]:
    """``filters/<first conv>`` and ``feature_maps/<i>_<conv>`` (for ``image``, 1 x C x H x W) grid images
    by tag; models without convolutions get none."""
    convs = conv_layers(module)
    pictures = {}
    if filters and convs:
        name, conv = convs[0]
        pictures[f"filters/{name}"] = filter_grid(conv)
    if feature_maps > 0 and convs and image is not None:
        outputs = feature_maps_of(module, image, convs[:feature_maps])
        for i, (name, _) in enumerate(convs[:feature_maps]):
            if outputs.get(name) is not None and outputs[name].ndim == 4:
                pictures[f"feature_maps/{i}_{name}"] = feature_map_grid(outputs[name][0])
    return pictures


def denormalize(images: torch.Tensor, datamodule) -> torch.Tensor:
    """Normalised images back to 0..1 with the data module's mean and std (per image min-max without)."""
    images = images.detach().float().cpu()
    mean, std = getattr(datamodule, "mean", None), getattr(datamodule, "std", None)
    if mean is not None and std is not None and len(mean) == images.shape[1]:
        mean = torch.tensor(mean).view(1, -1, 1, 1)
        std = torch.tensor(std).view(1, -1, 1, 1)
        return (images * std + mean).clamp(0, 1)
    low = images.amin(dim=(1, 2, 3), keepdim=True)
    high = images.amax(dim=(1, 2, 3), keepdim=True)
    return (images - low) / (high - low).clamp_min(1e-8)


def never_stops_a_run(hook):
    """A picture is a convenience: one that cannot be drawn (non-finite weights, a plotting failure) is
    skipped with a warning, and the run goes on."""

    @functools.wraps(hook)
    def guarded(self, trainer, *args, **kwargs):
        try:
            return hook(self, trainer, *args, **kwargs)
        except Exception as err:  # noqa: BLE001
            if trainer.is_global_zero:
                reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
                warnings.warn(f"cnnlab: a picture ({hook.__name__}) was skipped: {reason}", stacklevel=2)

    return guarded


class TensorBoardPictures(L.Callback):
    """Logs pictures of a run to TensorBoard (see the module's docstring for the tags).

    Args:
        confusion_matrix: the test confusion matrix, class names on the axes and counts in the cells.
        per_class_accuracy: a bar chart of each class's test accuracy.
        misclassified: how many of the most confidently wrong test images to show (0: none), each with
            its true and predicted class.
        filters: the first convolution layer's filters.
        feature_maps: for how many of the first convolution layers to show the feature maps of a fixed
            validation image (0: none).
        every_n_epochs: draw filters and feature maps every this many epochs.
        histograms: weight and gradient histograms of every parameter.
        histogram_every_n_epochs: draw histograms every this many epochs (from the first).
        hparams: the run's hyperparameters with its best validation and test metrics (HParams tab).
    """

    def __init__(
        self,
        confusion_matrix: bool = True,
        per_class_accuracy: bool = True,
        misclassified: int = 16,
        filters: bool = True,
        feature_maps: int = 3,
        every_n_epochs: int = 1,
        histograms: bool = True,
        histogram_every_n_epochs: int = 5,
        hparams: bool = True,
    ):
        self.confusion_matrix = confusion_matrix
        self.per_class_accuracy = per_class_accuracy
        self.misclassified = misclassified
        self.filters = filters
        self.feature_maps = feature_maps
        self.every_n_epochs = max(1, every_n_epochs)
        self.histograms = histograms
        self.histogram_every_n_epochs = max(1, histogram_every_n_epochs)
        self.hparams = hparams
        self._fixed_image: torch.Tensor | None = None
        self._input_logged = False
        self._test_metrics: MetricCollection | None = None
        self._wrong: dict[str, torch.Tensor] | None = None
        self._gradients_logged_epoch = -1
        self._hparams_written: set[str] = set()

    # -- weights and gradients ---------------------------------------------------------------------
    def _histograms_due(self, trainer) -> bool:
        return self.histograms and trainer.current_epoch % self.histogram_every_n_epochs == 0

    @never_stops_a_run
    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        # Gradients exist only between backward and the optimizer step; taken on the epoch's last batch.
        if not trainer.is_last_batch or not self._histograms_due(trainer) or not trainer.is_global_zero:
            return  # every step: the cheap checks first
        logger = tensorboard_logger(trainer)
        if logger is None or self._gradients_logged_epoch == trainer.current_epoch:
            return
        self._gradients_logged_epoch = trainer.current_epoch
        for name, param in pl_module.named_parameters():
            if param.grad is not None:
                logger.experiment.add_histogram(
                    f"gradients/{name.removeprefix('model.')}",
                    param.grad.detach().float().cpu(),
                    trainer.global_step,
                )

    @never_stops_a_run
    def on_train_epoch_end(self, trainer, pl_module) -> None:
        logger = tensorboard_logger(trainer)
        if logger is None or not trainer.is_global_zero or not self._histograms_due(trainer):
            return
        for name, param in pl_module.named_parameters():
            logger.experiment.add_histogram(
                f"weights/{name.removeprefix('model.')}", param.detach().float().cpu(), trainer.global_step
            )

    # -- filters and feature maps ------------------------------------------------------------------
    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        if self._fixed_image is None and batch_idx == 0 and self.feature_maps > 0:
            self._fixed_image = batch[0][:1].detach().clone()

    @never_stops_a_run
    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        logger = tensorboard_logger(trainer)
        if logger is None or trainer.sanity_checking or not trainer.is_global_zero:
            return
        if trainer.current_epoch % self.every_n_epochs != 0:
            return
        image = self._fixed_image if self.feature_maps > 0 else None
        pictures = layer_pictures(pl_module, image, self.filters, self.feature_maps)
        if pictures and image is not None and not self._input_logged:
            shown = denormalize(image, trainer.datamodule)
            pictures["feature_maps/input"] = tile_grid(shown)
            self._input_logged = True
        for tag, picture in pictures.items():
            logger.experiment.add_image(tag, picture, trainer.global_step)

    # -- test pictures -----------------------------------------------------------------------------
    def on_test_epoch_start(self, trainer, pl_module) -> None:
        self._test_metrics = self._wrong = None

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if tensorboard_logger(trainer) is None:
            return
        images, labels = batch[0], batch[1]
        if isinstance(outputs, torch.Tensor):
            logits = outputs.detach()
        else:
            with torch.no_grad():
                logits = pl_module(images)
        if self._test_metrics is None:
            n = logits.shape[1]
            self._test_metrics = MetricCollection(
                {
                    "matrix": MulticlassConfusionMatrix(n, validate_args=False),
                    "accuracy": MulticlassAccuracy(n, average=None, validate_args=False),
                },
                compute_groups=False,
            ).to(logits.device)
        confidence, predicted = logits.float().softmax(dim=1).max(dim=1)
        self._test_metrics.update(predicted, labels)
        if self.misclassified > 0:
            self._keep_most_confident_wrong(images, labels, predicted, confidence)

    def _keep_most_confident_wrong(self, images, labels, predicted, confidence) -> None:
        """Keep the ``misclassified`` wrong images with the highest confidence seen so far, on the device
        and without reading anything back to the host (right answers get confidence -1)."""
        k = self.misclassified
        if self._wrong is None:
            self._wrong = {
                "confidence": torch.full((k,), -1.0, device=images.device),
                "images": images.new_zeros((k, *images.shape[1:])),
                "labels": labels.new_zeros(k),
                "predicted": predicted.new_zeros(k),
            }
        wrong_confidence = torch.where(predicted != labels, confidence, torch.full_like(confidence, -1.0))
        top = wrong_confidence.topk(min(k, len(wrong_confidence))).indices
        candidates = {
            "confidence": torch.cat([self._wrong["confidence"], wrong_confidence[top]]),
            "images": torch.cat([self._wrong["images"], images[top]]),
            "labels": torch.cat([self._wrong["labels"], labels[top]]),
            "predicted": torch.cat([self._wrong["predicted"], predicted[top]]),
        }
        keep = candidates["confidence"].topk(k).indices
        self._wrong = {key: value[keep] for key, value in candidates.items()}

    @never_stops_a_run
    def on_test_epoch_end(self, trainer, pl_module) -> None:
        logger = tensorboard_logger(trainer)
        if logger is None or self._test_metrics is None:
            return
        values = self._test_metrics.compute()  # synchronised across processes
        self._test_metrics.reset()
        wrong = self._wrong
        if wrong is not None and trainer.world_size > 1:
            wrong = {key: pl_module.all_gather(value).flatten(0, 1) for key, value in wrong.items()}
        if not trainer.is_global_zero:
            return
        matrix = values["matrix"].cpu()
        names = class_names_of(pl_module, len(matrix))
        step = trainer.global_step
        if self.confusion_matrix:
            fig = confusion_matrix_figure(
                matrix, names, title=f"test confusion matrix ({int(matrix.sum())} images)"
            )
            logger.experiment.add_image("test/confusion_matrix", to_array(fig), step, dataformats="HWC")
        if self.per_class_accuracy:
            accuracy = values["accuracy"].cpu().tolist()
            overall = float(matrix.diagonal().sum() / matrix.sum().clamp_min(1))
            fig = bar_figure(
                accuracy,
                names,
                "test accuracy per class",
                "share of the class classified correctly",
                overall=overall,
            )
            logger.experiment.add_image("test/per_class_accuracy", to_array(fig), step, dataformats="HWC")
        if wrong is not None:
            self._log_misclassified(logger, trainer, wrong, names, step)

    def _log_misclassified(self, logger, trainer, wrong, names, step) -> None:
        order = wrong["confidence"].cpu().argsort(descending=True)[: self.misclassified]
        confidence = wrong["confidence"].cpu()[order]
        order = order[confidence >= 0]  # fewer wrong images than asked for: only the wrong ones
        if len(order) == 0:
            return
        images = denormalize(wrong["images"].cpu()[order], trainer.datamodule)
        labels, predicted = wrong["labels"].cpu()[order].tolist(), wrong["predicted"].cpu()[order].tolist()
        titles = [
            f"true: {names[t]}\npredicted: {names[p]} ({c:.1%})"
            for t, p, c in zip(labels, predicted, wrong["confidence"].cpu()[order].tolist(), strict=True)
        ]
        fig = image_grid_figure(images, titles)
        logger.experiment.add_image("test/misclassified", to_array(fig), step, dataformats="HWC")

    # -- hyperparameters and results -------------------------------------------------------------
    @never_stops_a_run
    def on_fit_end(self, trainer, pl_module) -> None:
        # Declared with the test metrics that the post-fit test adds: TensorBoard keeps the first
        # HParams summary of a run, and reads the metrics' values from their scalars.
        self._log_hparams(trainer, pl_module, self._best_val(trainer), declare=TEST_HPARAMS)

    @never_stops_a_run
    def on_test_end(self, trainer, pl_module) -> None:
        found = {name: trainer.callback_metrics.get(metric) for name, metric in TEST_HPARAMS.items()}
        metrics = {name: float(value) for name, value in found.items() if value is not None}
        logger = tensorboard_logger(trainer)
        if logger is not None and logger.log_dir not in self._hparams_written:
            metrics = {**self._best_val(trainer), **metrics}  # not logged at the end of a fit
        self._log_hparams(trainer, pl_module, metrics, declare={})

    @staticmethod
    def _best_val(trainer) -> dict[str, float]:
        checkpoint = trainer.checkpoint_callback
        best = getattr(checkpoint, "best_model_score", None)
        if best is None or getattr(checkpoint, "monitor", None) != "val/acc":
            return {}
        return {"hp/val_acc_best": float(best)}

    def _log_hparams(self, trainer, pl_module, metrics: dict[str, float], declare: dict) -> None:
        """Hyperparameters with result metrics in TensorBoard's HParams tab, written once per run."""
        logger = tensorboard_logger(trainer)
        if not self.hparams or logger is None or not trainer.is_global_zero:
            return
        if metrics:
            logger.log_metrics(metrics, step=trainer.global_step)
        names = list(dict.fromkeys([*metrics, *declare]))
        if not names or logger.log_dir in self._hparams_written:
            return
        self._hparams_written.add(logger.log_dir)
        params = dict(pl_module.hparams)
        datamodule = trainer.datamodule
        if datamodule is not None:
            params["data"] = type(datamodule).__name__
            params["batch_size"] = getattr(datamodule, "batch_size", None)
        params.update(max_epochs=trainer.max_epochs, precision=str(trainer.precision))
        # Only the metric names go into the summary; the values are the scalars logged above.
        writer = logger.experiment._get_file_writer()  # as TensorBoardLogger.log_hyperparams does
        for summary in hparams_summary(flat_params(params), dict.fromkeys(names, 0.0)):
            writer.add_summary(summary, trainer.global_step)
        logger.experiment.flush()


def flat_params(params: dict, prefix: str = "") -> dict:
    """Nested dicts flattened with ``/``; values other than numbers, strings and booleans as text."""
    flat = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flat_params(value, f"{name}/"))
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        else:
            flat[name] = str(value)
    return flat
