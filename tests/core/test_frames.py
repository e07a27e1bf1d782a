"""Which frames are the user's: generated code belongs to the module it runs in."""

from __future__ import annotations

import sys
from types import FrameType

from slipstream._impl.core.frames import is_user_frame


def _frame_of(source: str, module_globals: dict[str, object]) -> FrameType:
    code = compile(source, "<makefunc generated>", "exec")
    exec(code, module_globals)
    made = module_globals["grab"]
    assert callable(made)
    frame = made()
    assert isinstance(frame, FrameType)
    return frame


GRAB = "import sys\ndef grab():\n    return sys._getframe(0)\n"


class TestIsUserFrame:
    def test_this_test_is_user_code(self) -> None:
        """A frame of a file outside the standard library and site-packages is the user's."""
        assert is_user_frame(sys._getframe(0))

    def test_generated_code_in_a_library_module_is_the_library(self) -> None:
        """Code compiled from a string in a library module's globals (SQLAlchemy's generated
        ``Session.commit``) is library code, though its file name is not a library path."""
        import json

        frame = _frame_of(GRAB, {"__name__": json.__name__})
        assert frame.f_code.co_filename == "<makefunc generated>"
        assert not is_user_frame(frame)

    def test_generated_code_in_a_user_module_is_the_user(self) -> None:
        """The same code run in this (user) module's globals is the user's, and so is code
        from a string with no module file at all (``python -c``)."""
        assert is_user_frame(_frame_of(GRAB, {"__name__": __name__}))
        assert is_user_frame(_frame_of(GRAB, {"__name__": "no_such_module_here"}))
