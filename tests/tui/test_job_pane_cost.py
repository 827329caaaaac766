"""The job pane shows an agent's cost and tokens always, whatever its report holds."""

from __future__ import annotations

from farro_core import job
from farro_core.clock import utcnow
from farro_core.envelope import Result, parse_spec
from farro_core.root import Root
from farro_core.transitions import Actor, Status
from farro_tui.screens.job import JobScreen

from .helpers import claim, console, ready, until
from .test_console import content_text


async def test_cost_and_tokens_show_before_a_long_report(root: Root) -> None:
    env = job.create(root, parse_spec({"prompt": "p", "title": "costly"}))
    c = claim(root, env.id)
    # more than the 12 scalars the pane lists: cost and tokens come last in the report
    report: dict[str, object] = {f"note_{i:02}": f"value {i}" for i in range(20)}
    report.update(
        cost_usd=0.01332,
        tokens_in=2400,
        tokens_out=160,
        tokens_cache_read=600,
        tokens_cache_write=80,
        turns=2,
    )
    now = utcnow()
    result = Result(
        attempt=1, exit_code=0, started_at=now, finished_at=now, duration_s=1.0, report=report
    )
    job.commit(c, Status.SUCCEEDED, Actor.AGENT, "done", result=result)
    job.release_claim(c)
    app = console(root)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        app.screen.queue.select(env.id)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, JobScreen), "the job pane")
        screen = app.screen
        await until(pilot, lambda: screen.env is not None, "the job loaded")
        text = content_text(screen)
        assert "$0.0133" in text
        assert "2,400 in / 160 out" in text
        assert "600 read / 80 written" in text
        assert "note 00" in text and "note 19" not in text  # the rest still capped
