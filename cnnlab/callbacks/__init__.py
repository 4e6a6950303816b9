"""Every Lightning callback of cnnlab; recipes name them ``cnnlab.callbacks.<Name>``.

``experiments/defaults.yaml`` adds most of them to every run.
"""

from cnnlab.callbacks.epoch_timer import EpochTimer
from cnnlab.callbacks.evaluation_report import EvaluationReport
from cnnlab.callbacks.exact_resume import ExactResume
from cnnlab.callbacks.freezing import FreezeParameters
from cnnlab.callbacks.lookahead import Lookahead
from cnnlab.callbacks.model_card import ModelSummaryFile
from cnnlab.callbacks.pictures import TensorBoardPictures
from cnnlab.callbacks.prediction_writer import PredictionWriter
from cnnlab.callbacks.pruning import MagnitudePruning
from cnnlab.callbacks.run_info import RunInfo
from cnnlab.callbacks.safety import SaveOnInterrupt, StopOnNonFiniteLoss

__all__ = [
    "EpochTimer",
    "EvaluationReport",
    "ExactResume",
    "FreezeParameters",
    "Lookahead",
    "MagnitudePruning",
    "ModelSummaryFile",
    "PredictionWriter",
    "RunInfo",
    "SaveOnInterrupt",
    "StopOnNonFiniteLoss",
    "TensorBoardPictures",
]
