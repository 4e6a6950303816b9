"""cnnlab: classic image-classification CNNs trained from the Lightning CLI."""

__version__ = "0.1.0"
