"""The progress message: posted late, throttled, replaced by the result; background work."""

from __future__ import annotations

import asyncio

from bot.delivery import BackgroundWork, ProgressMessage
from bot.render.reply import ChatReply


class RecordingPoster:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    async def post(self, channel: str, reply: ChatReply, thread_ts: str | None = None) -> str:
        self.events.append(("post", reply.text, thread_ts or ""))
        return f"ts{len(self.events)}"

    async def update(self, channel: str, ts: str, reply: ChatReply) -> None:
        self.events.append(("update", reply.text, ts))

    async def delete(self, channel: str, ts: str) -> None:
        self.events.append(("delete", "", ts))


async def test_fast_command_posts_only_its_result() -> None:
    poster = RecordingPoster()
    progress = ProgressMessage(poster, "C1", first_after=0.2)
    progress.start()
    await progress("almost instantly")
    assert await progress.finish(ChatReply(text="done")) == "ts1"
    await asyncio.sleep(0.25)
    assert poster.events == [("post", "done", "")]


async def test_slow_command_progress_is_throttled_then_replaced() -> None:
    poster = RecordingPoster()
    progress = ProgressMessage(poster, "C1", title="checking…", interval=0.1, first_after=0.05)
    progress.start()
    await asyncio.sleep(0.07)
    for step in range(50):  # a chatty engine: 50 updates in 0.25 s
        await progress(f"step {step}")
        await asyncio.sleep(0.005)
    await progress.finish(ChatReply(text="result"))
    kinds = [e[0] for e in poster.events]
    assert kinds[0] == "post" and poster.events[0][1].startswith("checking…")
    assert poster.events[-1] == ("update", "result", "ts1")
    # about one edit per 0.1 s, not 50
    assert 2 <= kinds.count("update") <= 6


async def test_progress_in_a_thread_and_discard() -> None:
    poster = RecordingPoster()
    progress = ProgressMessage(poster, "C1", thread_ts="100.1", first_after=0.0)
    progress.start()
    await asyncio.sleep(0.02)
    await progress.discard()
    assert poster.events == [("post", "checking…", "100.1"), ("delete", "", "ts1")]


async def test_background_work_survives_failures_and_drains() -> None:
    work = BackgroundWork()
    done: list[int] = []

    async def fails() -> None:
        raise RuntimeError("delivery failed")

    async def succeeds() -> None:
        await asyncio.sleep(0.01)
        done.append(1)

    work.spawn(fails())
    work.spawn(succeeds())
    assert await work.drain(within=1)
    assert done == [1] and len(work) == 0


class FailingPoster(RecordingPoster):
    """Slack refuses some edits and deletions."""

    def __init__(self, fail: set[str]) -> None:
        super().__init__()
        self.fail = fail

    async def update(self, channel: str, ts: str, reply: ChatReply) -> None:
        if "update" in self.fail and "checking" not in reply.text and "answered" not in reply.text:
            raise RuntimeError("cant_update_message")
        await super().update(channel, ts, reply)

    async def delete(self, channel: str, ts: str) -> None:
        if "delete" in self.fail:
            raise RuntimeError("cant_delete_message")
        await super().delete(channel, ts)


async def test_a_failed_edit_posts_the_result_anew_and_removes_the_progress() -> None:
    poster = FailingPoster({"update"})
    progress = ProgressMessage(poster, "C1", first_after=0.0)
    progress.start()
    await asyncio.sleep(0.02)
    assert await progress.finish(ChatReply(text="result")) == "ts2"
    assert poster.events == [
        ("post", "checking…", ""),
        ("post", "result", ""),
        ("delete", "", "ts1"),
    ]


async def test_a_progress_message_that_cannot_be_deleted_says_where_the_answer_went() -> None:
    poster = FailingPoster({"delete"})
    progress = ProgressMessage(poster, "C1", first_after=0.0)
    progress.start()
    await asyncio.sleep(0.02)
    await progress.discard()
    assert poster.events[-1] == ("update", "(answered privately)", "ts1")
