"""mnist_cnn: real MNIST on the device, a configurable CNN, a fast trainer and measurements.

Knows nothing of Optuna; usable as a library on its own.
"""

from mnist_cnn.data import DataError, ImageSet, TrainValidationSplit, load_test_set, load_train_validation
from mnist_cnn.model import CNNConfig, InvalidConfig, build_model
from mnist_cnn.train import EpochRecord, StopTraining, TrainResult, TrainSettings, evaluate, train

__all__ = [
    "CNNConfig", "DataError", "EpochRecord", "ImageSet", "InvalidConfig", "StopTraining",
    "TrainResult", "TrainSettings", "TrainValidationSplit", "build_model", "evaluate",
    "load_test_set", "load_train_validation", "train",
]
