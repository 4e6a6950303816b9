"""CIFAR-100 through ``torchvision.datasets.CIFAR100`` (the pickles in ``cifar-100-python``): CIFAR-10's
format and augmentation, with 100 fine classes or, as an option, their 20 superclasses."""

import os
import pickle

from torchvision.datasets import CIFAR100

from .cifar10 import CIFAR10DataModule
from .errors import DataError

# The names in the data set's ``meta`` file, in label order.
FINE_NAMES = [
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
    "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle",
    "mountain", "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear",
    "pickup_truck", "pine_tree", "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon",
    "ray", "road", "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail",
    "snake", "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone",
    "television", "tiger", "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale",
    "willow_tree", "wolf", "woman", "worm",
]  # fmt: skip
COARSE_NAMES = [
    "aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables",
    "household_electrical_devices", "household_furniture", "insects", "large_carnivores",
    "large_man-made_outdoor_things", "large_natural_outdoor_scenes", "large_omnivores_and_herbivores",
    "medium_mammals", "non-insect_invertebrates", "people", "reptiles", "small_mammals", "trees",
    "vehicles_1", "vehicles_2",
]  # fmt: skip


class CIFAR100Coarse(CIFAR100):
    """torchvision's ``CIFAR100`` with the 20 superclass labels (``coarse_labels`` in the pickles) and
    their names (``coarse_label_names`` in ``meta``); torchvision's class reads only the fine ones."""

    meta = {**CIFAR100.meta, "key": "coarse_label_names"}

    def __init__(self, root, train: bool = True, transform=None, target_transform=None, download=False):
        super().__init__(root, train, transform, target_transform, download)
        self.targets = []
        for file_name, _ in self.train_list if train else self.test_list:
            with open(os.path.join(self.root, self.base_folder, file_name), "rb") as f:
                self.targets.extend(pickle.load(f, encoding="latin1")["coarse_labels"])


class CIFAR100DataModule(CIFAR10DataModule):
    """CIFAR-100 (Krizhevsky 2009): 50,000 training and 10,000 test images, 3x32x32, 100 classes.

    The 100 classes fall into 20 superclasses, which ``labels: coarse`` trains on instead. Training
    augmentation as for CIFAR-10: random 32x32 crop of the image padded by 4, horizontal flip.
    ``data_dir`` is the folder that holds ``cifar-100-python/``.

    Its other arguments are ``ClassificationDataModule``'s.

    Args:
        labels: ``fine`` for the 100 classes, ``coarse`` for the 20 superclasses.
    """

    dataset_cls = CIFAR100
    dataset_name = "CIFAR-100"
    dataset_folder = "cifar-100-python"
    # per-channel statistics of the 50,000 training images
    mean = (0.5071, 0.4865, 0.4409)
    std = (0.2673, 0.2564, 0.2762)

    def __init__(self, labels: str = "fine", **kwargs):
        super().__init__(**kwargs)
        if labels not in ("fine", "coarse"):
            raise DataError(
                f"--data.labels must be 'fine' (100 classes) or 'coarse' (20 superclasses), got {labels!r}"
            )
        self.labels = labels
        self.class_names = list(FINE_NAMES if labels == "fine" else COARSE_NAMES)
        self.num_classes = len(self.class_names)

    def _torchvision(self, source: str, transform, download: bool):
        cls = CIFAR100 if self.labels == "fine" else CIFAR100Coarse
        dataset = cls(str(self.data_dir), train=source == "train", transform=transform, download=download)
        if dataset.classes != self.class_names:  # the model's class names come from this module
            meta = self.data_dir / self.dataset_folder / "meta"
            raise DataError(
                f"{meta.resolve()} names other {self.labels} classes than CIFAR-100's (first: "
                f"{dataset.classes[:1]}); point --data.data_dir at a copy of CIFAR-100"
            )
        return dataset
