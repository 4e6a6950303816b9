import pytest
import torch
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_precision

from cnnlab.models.classifier import split_metrics


def test_a_first_batch_without_mistakes_does_not_mix_the_metrics():
    # torchmetrics merges metrics whose states are equal after the first batch; with no mistakes in it,
    # top-5 accuracy's counts equal precision's, and merged, precision was computed from top-5 counts.
    torch.manual_seed(0)
    metrics = split_metrics(10, "test")
    logits, labels = [], []
    for noise in (0.0, 1.5, 1.5):
        y = torch.randint(0, 10, (128,))
        batch = torch.nn.functional.one_hot(y, 10).float() * 3 + torch.randn(128, 10) * noise
        metrics.update(batch, y)
        dict(metrics.items())  # as ImageClassifier logs them after each update
        logits.append(batch)
        labels.append(y)
    logits, labels = torch.cat(logits), torch.cat(labels)
    values = {name: float(metric.compute()) for name, metric in metrics.items()}
    assert values["test/precision"] == pytest.approx(multiclass_precision(logits, labels, 10).item())
    assert values["test/acc"] == pytest.approx(
        multiclass_accuracy(logits, labels, 10, average="micro").item()
    )
    assert values["test/acc_top5"] > values["test/acc"]
