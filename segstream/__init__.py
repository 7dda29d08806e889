"""segstream: real-time customer segmentation over Kafka and Redis."""

__all__ = ["__version__"]

__version__ = "0.1.0"
