"""The StopResult of a stream: what the chat shows, read from the sent state its final pass
recorded (pure, no I/O)."""

from __future__ import annotations

from tokenrelay.results import How, StopResult
from tokenrelay.store import SentState, Snapshot
from workers.planner import delivery


def stop_result(snap: Snapshot, state: SentState, gave_up: float | None = None) -> StopResult:
    """What the chat shows, from the sent state the final pass recorded."""
    end = snap.window.end
    missing = delivery.unsent(state.segments, end)
    ids = [s.message_id for s in state.segments if s.message_id is not None]
    how: How
    if state.failure is not None:
        how = "failed"
    elif missing:
        how = "incomplete"
    elif not ids:
        how = "empty"
    elif state.whole_at_stop:
        how = "sent_at_stop"
    elif state.stop_ops:
        how = "edited_at_stop"
    else:
        how = "streamed"
    error = state.failure
    if error is None and missing:
        error = state.last_error
    if gave_up is not None and error is None:
        error = f"final delivery still held back after {gave_up:g} s (rate limits or server errors)"
    return StopResult(
        stream_id=snap.stream_id,
        all_sent=state.failure is None and missing == 0,
        message_ids=ids,
        how=how,
        channel=snap.meta.get("channel", ""),
        chat_id=snap.meta.get("chat_id", ""),
        text_chars=end,
        unsent_chars=missing,
        first_visible_ms=state.first_visible_ms,
        error=error,
        **{k: v for k, v in state.counts.items() if k in StopResult.__dataclass_fields__},
    )
