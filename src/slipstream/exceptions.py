"""Public home of slipstream's exceptions (see ``slipstream._exceptions`` for the tree)."""

from ._exceptions import CheckpointError as CheckpointError
from ._exceptions import CircuitOpen as CircuitOpen
from ._exceptions import FailedItems as FailedItems
from ._exceptions import FlushFailed as FlushFailed
from ._exceptions import InputError as InputError
from ._exceptions import ItemCancelled as ItemCancelled
from ._exceptions import PipelineError as PipelineError
from ._exceptions import RegistryClosed as RegistryClosed
from ._exceptions import Skip as Skip
from ._exceptions import SlipstreamError as SlipstreamError
from ._exceptions import TaskSetFull as TaskSetFull

__all__ = [
    "CheckpointError",
    "CircuitOpen",
    "FailedItems",
    "FlushFailed",
    "InputError",
    "ItemCancelled",
    "PipelineError",
    "RegistryClosed",
    "Skip",
    "SlipstreamError",
    "TaskSetFull",
]
