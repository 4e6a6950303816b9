import lightning as L
import pytest
import torch

from cnnlab.datamodules import MNISTDataModule
from cnnlab.models import ImageClassifier
from cnnlab.models.errors import ModelError

ONE_CYCLE = {"class_path": "torch.optim.lr_scheduler.OneCycleLR", "init_args": {"max_lr": 0.05}}


def tiny_trainer(tmp_path, **kwargs) -> L.Trainer:
    kwargs = {
        "max_epochs": 1,
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "default_root_dir": tmp_path,
        **kwargs,
    }
    return L.Trainer(**kwargs)


def mnist(root) -> MNISTDataModule:
    return MNISTDataModule(data_dir=str(root), batch_size=32, num_workers=0, download=False)


def mnist_model(arch: str, **kwargs) -> ImageClassifier:
    return ImageClassifier(arch=arch, num_classes=10, in_channels=1, image_size=28, **kwargs)


def test_checkpoint_loads_with_no_arguments_and_weights_only(mnist_root, tmp_path):
    model = mnist_model("lenet5", class_names=[str(i) for i in range(10)], label_smoothing=0.1)
    trainer = tiny_trainer(tmp_path, limit_train_batches=3, limit_val_batches=1)
    trainer.fit(model, datamodule=mnist(mnist_root))
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)

    raw = torch.load(path, weights_only=True)
    assert raw["hyper_parameters"]["arch"] == "lenet5"
    assert raw["global_step"] == 3

    loaded = ImageClassifier.load_from_checkpoint(path)
    assert loaded.hparams.class_names == [str(i) for i in range(10)]
    x = torch.randn(4, 1, 28, 28)
    model.eval(), loaded.eval()
    torch.testing.assert_close(loaded(x), model(x))


def test_one_cycle_length_comes_from_the_trainer(mnist_root, tmp_path):
    sgd = {"class_path": "torch.optim.SGD", "init_args": {"lr": 0.01}}
    model = mnist_model("mnist_cnn", optimizer=sgd, lr_scheduler=ONE_CYCLE)
    trainer = tiny_trainer(tmp_path, max_epochs=2, limit_train_batches=4, limit_val_batches=1)
    trainer.fit(model, datamodule=mnist(mnist_root))
    config = trainer.lr_scheduler_configs[0]
    assert config.interval == "step"
    assert config.scheduler.total_steps == 8 == trainer.global_step


def test_epoch_schedulers_step_per_epoch(mnist_root, tmp_path):
    step_lr = {"class_path": "torch.optim.lr_scheduler.StepLR", "init_args": {"step_size": 1, "gamma": 0.5}}
    model = mnist_model("mnist_cnn", lr_scheduler=step_lr)
    trainer = tiny_trainer(tmp_path, max_epochs=2, limit_train_batches=3, limit_val_batches=1)
    trainer.fit(model, datamodule=mnist(mnist_root))
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(1e-3 * 0.25)


@pytest.mark.parametrize(
    "optimizer, fused",
    [
        (None, True),  # the default Adam
        ({"class_path": "torch.optim.SGD", "init_args": {"lr": 0.1, "momentum": 0.9}}, True),
        ({"class_path": "torch.optim.AdamW", "init_args": {"lr": 1e-3, "foreach": True}}, False),
        ({"class_path": "torch.optim.Adam", "init_args": {"lr": 1e-3, "fused": False}}, False),
        ({"class_path": "torch.optim.LBFGS", "init_args": {"lr": 1.0}}, False),  # has no fused kernels
    ],
)
def test_optimizers_use_fused_kernels_unless_the_config_chooses(optimizer, fused):
    model = mnist_model("lenet5", optimizer=optimizer)
    opt = model.configure_optimizers()
    assert bool(opt.param_groups[0].get("fused")) is fused


def test_fused_adam_trains_like_the_unfused_one():
    torch.manual_seed(0)
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    weights = []
    for choice in ({"fused": None}, {"foreach": True}):
        torch.manual_seed(1)
        model = mnist_model("lenet5", optimizer={"class_path": "torch.optim.Adam", "init_args": choice})
        opt = model.configure_optimizers()
        for _ in range(3):
            opt.zero_grad()
            model._loss(model(x), y).backward()
            opt.step()
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.allclose(*weights, atol=1e-5)


def test_label_smoothing_raises_the_loss_of_confident_predictions():
    logits, y = torch.tensor([[10.0, -10.0]]), torch.tensor([0])
    plain = ImageClassifier(arch="simplecnn", num_classes=2)._loss(logits, y)
    smooth = ImageClassifier(arch="simplecnn", num_classes=2, label_smoothing=0.2)._loss(logits, y)
    assert smooth > plain + 1.0


def test_metrics_cover_top5_only_with_more_than_five_classes():
    ten = dict(ImageClassifier(arch="lenet5", num_classes=10).val_metrics.items())
    three = dict(ImageClassifier(arch="lenet5", num_classes=3).test_metrics.items())
    assert set(ten) == {"val/acc", "val/precision", "val/recall", "val/f1", "val/acc_top5"}
    assert set(three) == {"test/acc", "test/precision", "test/recall", "test/f1"}


def test_tta_averages_the_mirror_image_in_eval_only():
    torch.manual_seed(0)
    model = ImageClassifier(arch="simplecnn", num_classes=10, tta=True).eval()
    x = torch.randn(3, 3, 32, 32)
    out = model(x)
    assert out.shape == (3, 10)
    torch.testing.assert_close(out, (model.model(x) + model.model(x.flip(3))) / 2)
    model.train()
    torch.testing.assert_close(model(x), model.model(x))


def test_tta_shift_adds_the_mirrored_views_shifted_by_a_pixel_as_airbench94():
    torch.manual_seed(0)
    model = ImageClassifier(arch="simplecnn", num_classes=10, tta=True, tta_shift=1).eval()
    x = torch.randn(2, 3, 32, 32)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")
    up_left, down_right = padded[..., 0:32, 0:32], padded[..., 2:34, 2:34]
    assert torch.equal(up_left[..., 1:, 1:], x[..., :-1, :-1])  # the image moved one pixel down-right
    views = [x, x.flip(3), up_left, up_left.flip(3), down_right, down_right.flip(3)]
    net = model.model
    mirror = (net(views[0]) + net(views[1])) / 2
    shifted = ((net(views[2]) + net(views[3])) / 2 + (net(views[4]) + net(views[5])) / 2) / 2
    torch.testing.assert_close(model(x), (mirror + shifted) / 2)
    assert not torch.allclose(model(x), mirror)
    with pytest.raises(ModelError, match="tta_shift must be 0"):
        ImageClassifier(arch="simplecnn", tta=True, tta_shift=-1)


def test_channels_last_gives_the_same_outputs():
    torch.manual_seed(0)
    plain = ImageClassifier(arch="resnet18", num_classes=10, channels_last=False).eval()
    fast = ImageClassifier(arch="resnet18", num_classes=10).eval()  # channels_last is the default
    fast.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 32, 32)
    assert fast.model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert plain.model.conv1.weight.is_contiguous()  # NCHW
    torch.testing.assert_close(fast(x), plain(x), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_compiled_model_trains_and_its_checkpoint_loads_uncompiled(mnist_root, tmp_path, monkeypatch):
    compiled_with = []
    original = torch.nn.Module.compile

    def eager_compile(module, *args, **kwargs):  # dynamo's graph capture without inductor's C++ build
        compiled_with.append(type(module).__name__)
        original(module, *args, **{**kwargs, "backend": "eager"})

    monkeypatch.setattr(torch.nn.Module, "compile", eager_compile)
    torch._dynamo.reset()
    model = mnist_model("lenet5", compile=True)
    trainer = tiny_trainer(tmp_path, limit_train_batches=3, limit_val_batches=1)
    trainer.fit(model, datamodule=mnist(mnist_root))
    assert compiled_with == ["LeNet5"]  # the architecture, once, not the LightningModule
    assert trainer.global_step == 3
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    keys = torch.load(path, weights_only=True)["state_dict"].keys()
    assert not any("_orig_mod" in k for k in keys)  # parameter names as without compile

    plain = ImageClassifier.load_from_checkpoint(path, compile=False).eval()
    x = torch.randn(4, 1, 28, 28)
    torch.testing.assert_close(plain(x), model.eval()(x))
    torch._dynamo.reset()
