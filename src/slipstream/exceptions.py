# The tree is drawn once, in the implementation's docstring; help(slipstream.exceptions) shows it.
from ._impl.core import errors as _errors
from ._impl.core.errors import CheckpointError as CheckpointError
from ._impl.core.errors import CircuitOpen as CircuitOpen
from ._impl.core.errors import ConfigError as ConfigError
from ._impl.core.errors import FailedItems as FailedItems
from ._impl.core.errors import FlushFailed as FlushFailed
from ._impl.core.errors import InputError as InputError
from ._impl.core.errors import ItemCancelled as ItemCancelled
from ._impl.core.errors import NotReady as NotReady
from ._impl.core.errors import PipelineError as PipelineError
from ._impl.core.errors import PollTimeout as PollTimeout
from ._impl.core.errors import RegistryClosed as RegistryClosed
from ._impl.core.errors import RemoteError as RemoteError
from ._impl.core.errors import RowsRejected as RowsRejected
from ._impl.core.errors import Skip as Skip
from ._impl.core.errors import SlipstreamError as SlipstreamError
from ._impl.core.errors import TaskSetFull as TaskSetFull
from ._impl.core.transient import CommitOutcomeUnknown as CommitOutcomeUnknown
from ._impl.db.sequential import SequentialLoadWarning as SequentialLoadWarning

__doc__ = _errors.__doc__

__all__ = [
    "CheckpointError",
    "CircuitOpen",
    "CommitOutcomeUnknown",
    "ConfigError",
    "FailedItems",
    "FlushFailed",
    "InputError",
    "ItemCancelled",
    "NotReady",
    "PipelineError",
    "PollTimeout",
    "RegistryClosed",
    "RemoteError",
    "RowsRejected",
    "SequentialLoadWarning",
    "Skip",
    "SlipstreamError",
    "TaskSetFull",
]
