"""Chaos at CI size: three worker processes, one killed with -9 and replaced every 3 s, and 4% of
platform calls stalled 4 s (longer than the 2.5 s lease), while 30 replies stream.

The long run (minutes, 200 streams) is ``python -m bench chaos``; its figures are in
RELIABILITY.md.
"""

from __future__ import annotations

import pytest

from tests.chaos import run_chaos

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_kills_and_stalls_longer_than_the_lease_lose_nothing_and_leave_no_stale_text(
    settings_env,
) -> None:
    report = run_chaos(settings_env, streams=30, chars=3000, workers=3, kill_every=3.0,
                       stall_rate=0.04, stall=4.0)
    print("\nchaos:", report.line())
    assert report.kills >= 3 and report.stalls >= 3, "the faults really happened"
    assert not report.failed, report.failed
    assert report.exact == report.streams, f"not exact: {report.wrong}"
    assert not report.stale_final, f"an older text is the last word: {report.stale_final}"
    # a copy is only acceptable where the result owns up to a send whose answer was lost
    assert len(report.duplicated) <= report.ambiguous, report.duplicated
