"""``farro fsck``: check the root and, with ``--repair``, fix it (never deletes)."""

from typing import Annotated

import typer

from farro_core.cli.app import JsonOpt, RootOpt, _Failed, _open, _report, app
from farro_core.cli.render import _dump_json, _out, _plural
from farro_core.visible import visible


@app.command(short_help="Check the root; --repair fixes (never deletes).")
def fsck(
    repair: Annotated[
        bool, typer.Option("--repair", help="Fix what is found (quarantine, never delete).")
    ] = False,
    as_json: JsonOpt = False,
    root: RootOpt = None,
) -> None:
    """Check the root: misplaced, stale, corrupt, unaudited jobs and tmp/ leftovers."""
    from dataclasses import asdict

    from farro_core.fsck import fsck as run_fsck

    r = _open(root)
    findings = run_fsck(r, repair=repair)
    left = [f for f in findings if not f.repaired]
    if as_json:
        _dump_json([asdict(f) for f in findings])
    elif not findings:
        _out(f"{r.path}: clean")
    else:
        width = max(len(f.kind) for f in findings)
        for f in findings:
            detail = f.detail
            name = f.path.rsplit("/", 1)[-1]
            if detail.startswith(name + "/"):  # "done/ID: ID/job.json: ..." says ID twice
                detail = detail[len(name) + 1 :]
            _out(visible(f"{f.kind:<{width}}  {f.path}: {detail} -> {f.action}"))
        fixed = len(findings) - len(left)
        found = _plural(len(findings), "problem")
        _out(f"{found} found, {fixed} repaired" if repair else f"{found} found")
    if left:
        if repair:
            msg = f"{_plural(len(left), 'problem')} could not be repaired (see above)"
        else:
            it = "it" if len(left) == 1 else "them"
            msg = f"{_plural(len(left), 'problem')} found; `farro fsck --repair` fixes {it}"
        raise _Failed(_report(1, msg))
