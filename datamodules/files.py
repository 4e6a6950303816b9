"""Image files given one by one, with no data set behind them: what ``cnnlab predict`` classifies.

``ImageFilesDataModule`` holds no training, validation or test split. Its options state the shape the
model takes (``num_classes``, ``in_channels``, ``image_size``) and the normalisation of its training data;
``cnnlab predict --ckpt_path CKPT`` fills them from the checkpoint, so a prediction needs neither the
recipe nor the training data on disk. Given to ``cnnlab summary``, its options are the input shape.
"""

from .base import ClassificationDataModule
from .errors import DataError


class ImageFilesDataModule(ClassificationDataModule):
    """The user's image files (``predict_dir``) for a model of the given shape.

    Args:
        predict_dir: a folder (searched recursively) or a list of image files and folders.
        num_classes, in_channels, image_size: the model's classes and input shape.
        class_names: names of the classes, in the model's order.
        mean, std: normalisation per channel of the model's training data.
        batch_size, num_workers: as in every data module.
    """

    def __init__(
        self,
        predict_dir: str | list[str] | None = None,
        num_classes: int = 10,
        in_channels: int = 3,
        image_size: int = 32,
        class_names: list[str] | None = None,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        batch_size: int = 128,
        num_workers: int = 2,
    ):
        super().__init__(".", batch_size, num_workers, download=False, predict_dir=predict_dir)
        if image_size < 1 or num_classes < 1 or in_channels not in (1, 3):
            raise DataError(
                "--data.image_size and --data.num_classes must be 1 or more and --data.in_channels 1 or 3, "
                f"got {image_size}, {num_classes} and {in_channels}"
            )
        self.num_classes, self.in_channels, self.image_size = num_classes, in_channels, image_size
        self.class_names = list(class_names) if class_names else [str(i) for i in range(num_classes)]
        self.mean = tuple(mean) if mean else (0.5,) * in_channels
        self.std = tuple(std) if std else (0.5,) * in_channels

    def prepare_data(self) -> None:
        pass  # nothing to download

    def _has_split(self, split: str) -> bool:
        return False

    def setup(self, stage: str | None = None) -> None:
        if stage != "predict":
            raise DataError(
                f"no data set to {'train on' if stage == 'fit' else stage}: ImageFilesDataModule holds only "
                "the images to predict; pass a recipe (--config NAME) or a data module (--data "
                "MNISTDataModule --data.data_dir DIR)"
            )
        super().setup(stage)
