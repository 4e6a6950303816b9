import lightning as L
import pytest

from cnnlab.callbacks import EpochTimer
from cnnlab.datamodules import MNISTDataModule
from cnnlab.models import ImageClassifier


def test_epoch_timer_counts_every_training_image_and_logs_the_rate(mnist_root, tmp_path):
    dm = MNISTDataModule(data_dir=str(mnist_root), batch_size=50, download=False)
    timer = EpochTimer()
    trainer = L.Trainer(max_epochs=2, callbacks=[timer], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, default_root_dir=tmp_path)  # fmt: skip
    trainer.fit(ImageClassifier(arch="lenet5", num_classes=10, in_channels=1, image_size=28), datamodule=dm)
    assert len(timer.epoch_seconds) == 2 and all(s > 0 for s in timer.epoch_seconds)
    for seconds, rate in zip(timer.epoch_seconds, timer.images_per_second, strict=True):
        assert rate * seconds == pytest.approx(len(dm.train_set))  # 360 images, validation not counted
    assert float(trainer.callback_metrics["time/train_images_per_s"]) == pytest.approx(
        timer.images_per_second[-1]
    )
