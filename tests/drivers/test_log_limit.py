"""RateLimitedLog: one line, then one summary per interval while the problem goes on."""

import asyncio
import logging

from drivers.log_limit import RateLimitedLog


def test_a_flood_gives_one_line_then_one_summary_per_interval(caplog):
    limited = RateLimitedLog(logging.getLogger("test.limit"), logging.WARNING, interval=0.1)

    async def flood() -> None:
        for n in range(50):  # 0.25 s of refusals, every 5 ms
            limited("refused: %d", n)
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.25)  # quiet: the last summary comes, then nothing

    with caplog.at_level(logging.WARNING, "test.limit"):
        asyncio.run(flood())
        limited("refused: %d", 99)  # after a quiet interval: logged at once
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "refused: 0"
    assert 2 <= len(lines) - 2 <= 4  # ~0.35 s of summaries, one per 0.1 s interval at most
    assert all("more like it in" in line for line in lines[1:-1])
    counted = sum(int(line.split("(and ")[1].split()[0]) for line in lines[1:-1])
    assert 1 + counted == 50
    assert lines[-1] == "refused: 99"


def test_flush_summarises_at_once_and_without_a_loop_every_line_is_logged(caplog):
    limited = RateLimitedLog(logging.getLogger("test.limit"), logging.WARNING)

    async def burst() -> None:
        for n in range(3):
            limited("x %d", n)
        limited.flush()

    with caplog.at_level(logging.WARNING, "test.limit"):
        asyncio.run(burst())
        assert [r.getMessage()[:19] for r in caplog.records] == ["x 0", "x 2 (and 2 more lik"]
        caplog.clear()
        for n in range(3):  # no event loop to time an interval with
            limited("y %d", n)
    assert [r.getMessage() for r in caplog.records] == ["y 0", "y 1", "y 2"]
