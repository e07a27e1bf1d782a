"""LoopWatch's parts without a live loop: whose frame a report names, the report text, the
verdict on hand-built samples, and argument checks. (A live loop under watch: test_watch_loop.)"""

from __future__ import annotations

import os
import sys
from types import FrameType

import pytest

import slipstream as ss
from slipstream import testing
from slipstream._impl.loop import frames, verdict
from slipstream._impl.loop import watch as _loopwatch
from slipstream._impl.loop.verdict import Episode, Position, Sample

SWITCH = sys.getswitchinterval()


def callback_frame() -> FrameType:
    """A frame of this (user's) file, as a sample would find one in a callback."""
    return sys._getframe()


def busy_frame() -> FrameType:
    """A frame of this file, as a sample would find one in a busy thread."""
    return sys._getframe()


def in_call(frame: FrameType, line: int = 7) -> Position:
    """The position of a loop found in one callback (uvloop's form: no dispatch frame)."""
    return Position(region=((frame, 0, line),), dispatch=None)


def sample(
    t: float,
    position: Position | None,
    loop_cpu: float | None,
    loop_wakeups: int | None = None,
    others_cpu: float | None = None,
) -> Sample:
    """A sample at ``t``; ``others_cpu``: the CPU seconds one other thread (busy-0) has used."""
    s = Sample(
        t=t, loop_frame=None, position=position, loop_cpu=loop_cpu, loop_wakeups=loop_wakeups
    )
    if others_cpu is not None:
        s.cpu, s.names, s.frames = {1: others_cpu}, {1: "busy-0"}, {1: busy_frame()}
    return s


def episode(*samples: Sample) -> Episode:
    e = Episode(beat=0.0)
    for s in samples:
        e.add(s, s.t)
    return e


class TestUserCode:
    def test_a_slipstream_frame_is_library_code(self) -> None:
        """Frames of the stdlib, frozen modules, site-packages and slipstream (its public
        modules too) are not the user's; this test file is."""
        assert not frames.is_user_code(os.__file__)
        assert not frames.is_user_code("<frozen os>")
        assert not frames.is_user_code(_loopwatch.__file__)
        assert not frames.is_user_code(testing.__file__)
        assert not frames.is_user_code(pytest.__file__)
        assert not frames.is_user_code("/opt/app/venv/lib/python3.11/site-packages/x.py")
        assert frames.is_user_code(__file__)
        assert frames.is_user_code("<string>")


class TestReportText:
    def test_old_report_fields_still_work(self) -> None:
        """A BlockReport built with only the original five fields is a 'blocked' report."""
        report = ss.BlockReport(
            blocked_s=0.25, filename="app/jobs.py", lineno=42, function="scan_dir", stack=""
        )
        assert ("blocked", None, ()) == (report.kind, report.inside, report.threads)
        assert "event loop blocked for 250 ms in scan_dir at app/jobs.py:42" == str(report)

    def test_starved_report_text(self) -> None:
        """A starved report names every busy thread (four, then a count) and no blocker."""
        threads = tuple(
            ss.BusyThread(
                name=f"w{i}", cpu_s=0.061, filename="jobs.py", lineno=12, function="crunch"
            )
            for i in range(6)
        )
        report = ss.BlockReport(
            blocked_s=0.082,
            filename="jobs.py",
            lineno=12,
            function="crunch",
            stack="",
            kind="starved",
            threads=threads,
        )
        assert (
            "event loop starved for 82 ms: the loop thread was runnable but 6 busy threads held "
            "the GIL: w0 at jobs.py:12 crunch (61 ms CPU), w1 at jobs.py:12 crunch (61 ms CPU), "
            "w2 at jobs.py:12 crunch (61 ms CPU), w3 at jobs.py:12 crunch (61 ms CPU), "
            "and 2 more"
        ) == str(report)


class TestVerdict:
    def test_a_call_that_slept_held_the_loop(self) -> None:
        """Seen twice in one callback that neither ran nor woke between the looks: 'blocked',
        reported at the callback's line of user code."""
        where = in_call(callback_frame(), line=7)
        judged = verdict.judge(episode(sample(0.0, where, 0.0, 10), sample(0.2, where, 0.0001, 10)))
        assert judged is not None
        report = verdict.report_for(judged, 0.25, None)
        assert ("blocked", __file__, 7, "callback_frame") == (
            report.kind,
            report.filename,
            report.lineno,
            report.function,
        )
        assert (0.25, None) == (report.blocked_s, report.inside)

    def test_a_call_that_computed_held_the_loop(self) -> None:
        """A callback that ran more than two GIL switch intervals between two looks held the
        loop, even while another thread was busy."""
        where = in_call(callback_frame())
        judged = verdict.judge(
            episode(
                sample(0.0, where, 0.0, 0, others_cpu=0.0),
                sample(0.2, where, 3 * SWITCH, 40, others_cpu=0.15),
            )
        )
        assert judged is not None
        assert "blocked" == judged.kind

    def test_busy_threads_starve_a_loop_in_its_machinery(self) -> None:
        """A loop thread found only in asyncio's machinery, hardly running while another thread
        used 75% of a core: 'starved', naming that thread at its line."""
        judged = verdict.judge(
            episode(sample(0.0, None, 0.0, 0, others_cpu=0.0), sample(0.2, None, 0.001, 5, 0.15))
        )
        assert judged is not None
        report = verdict.report_for(judged, 0.2, None)
        assert "starved" == report.kind
        assert [("busy-0", "busy_frame", __file__)] == [
            (t.name, t.function, t.filename) for t in report.threads
        ]
        assert 0.15 == pytest.approx(report.threads[0].cpu_s)

    def test_a_callback_that_lost_the_gil_is_starved_after_patience(self) -> None:
        """A callback that barely ran but kept waking (asking for the GIL) while another thread
        was busy is no verdict within ``patience``, and 'starved' after it."""
        where = in_call(callback_frame())
        silence = episode(
            sample(0.0, where, 0.0, 0, others_cpu=0.0),
            sample(0.2, where, 0.001, int(0.2 / SWITCH), others_cpu=0.19),
        )
        assert verdict.judge(silence, patience=0.5) is None
        judged = verdict.judge(silence)
        assert judged is not None
        assert "starved" == judged.kind

    def test_without_cpu_times_machinery_is_no_verdict(self) -> None:
        """Without per-thread CPU times a loop seen only in its own machinery gets no verdict,
        and one seen twice in the same callback is 'blocked'."""
        assert verdict.judge(episode(sample(0.0, None, None), sample(0.2, None, None))) is None
        where = in_call(callback_frame())
        judged = verdict.judge(episode(sample(0.0, where, None), sample(0.2, where, None)))
        assert judged is not None
        assert "blocked" == judged.kind

    def test_an_episode_keeps_its_baseline_and_a_bounded_tail(self) -> None:
        """An episode keeps its first sample as the CPU baseline, at most MAX_SAMPLES samples,
        the frames of the latest one only, and the longest silence seen."""
        e = Episode(beat=0.0)
        first = sample(0.0, None, 0.0, others_cpu=0.0)
        e.add(first, 0.1)
        for i in range(1, 2 * verdict.MAX_SAMPLES):
            e.add(sample(i * 0.01, None, 0.0, others_cpu=0.0), 0.1 + i * 0.01)
        assert e.first is first
        assert verdict.MAX_SAMPLES == len(e.samples)
        assert [{}] * (verdict.MAX_SAMPLES - 1) == [s.frames for s in e.samples[:-1]]
        assert e.samples[-1].frames
        assert 0.1 + (2 * verdict.MAX_SAMPLES - 1) * 0.01 == pytest.approx(e.silent)


class TestArguments:
    def test_bad_arguments(self) -> None:
        """Non-positive thresholds, a None threshold, a non-callable on_block and a zero
        max_reports are named."""
        with pytest.raises(ValueError, match="'slow_s'"):
            ss.LoopWatch(slow_s=0)
        with pytest.raises(ValueError, match="'interval_s'"):
            ss.LoopWatch(interval_s=-1)
        with pytest.raises(TypeError, match="'slow_s' must be a number of seconds"):
            ss.LoopWatch(slow_s=None)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="'interval_s'"):
            ss.LoopWatch(interval_s="fast")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="'on_block'"):
            ss.LoopWatch(on_block="log")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="'max_reports'"):
            ss.LoopWatch(max_reports=0)
