"""Public home of slipstream's exceptions (see ``slipstream._exceptions`` for the tree)."""

from ._impl.core.errors import CheckpointError as CheckpointError
from ._impl.core.errors import CircuitOpen as CircuitOpen
from ._impl.core.errors import FailedItems as FailedItems
from ._impl.core.errors import FlushFailed as FlushFailed
from ._impl.core.errors import InputError as InputError
from ._impl.core.errors import ItemCancelled as ItemCancelled
from ._impl.core.errors import PipelineError as PipelineError
from ._impl.core.errors import RegistryClosed as RegistryClosed
from ._impl.core.errors import RemoteError as RemoteError
from ._impl.core.errors import Skip as Skip
from ._impl.core.errors import SlipstreamError as SlipstreamError
from ._impl.core.errors import TaskSetFull as TaskSetFull

__all__ = [
    "CheckpointError",
    "CircuitOpen",
    "FailedItems",
    "FlushFailed",
    "InputError",
    "ItemCancelled",
    "PipelineError",
    "RegistryClosed",
    "RemoteError",
    "Skip",
    "SlipstreamError",
    "TaskSetFull",
]
