"""Job-request files: the bytes of a spec file (JSON or TOML) turned into job specs.

One reader for both doors into a queue, ``farro submit`` and the manager's
``inbox/``, so a file means the same thing whichever way it arrives. Every
problem is one line of :class:`BadInput` that names the file, because an
operator reads it on a terminal or in ``inbox/rejected/NAME.error.txt``.

Accepted shapes: one spec object, or ``{"jobs": [spec, ...]}`` (TOML:
``[[jobs]]`` tables). A ``{"goal": ...}`` request is for the manager's planner:
:func:`is_goal` detects it, and :func:`spec_dicts` refuses it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from farro_core import bounded
from farro_core.errors import BadInput
from farro_core.validation import nul_at

if TYPE_CHECKING:
    from farro_core.envelope import JobSpec

Format = Literal["json", "toml"]

#: A request file larger than this is refused before it is parsed.
MAX_REQUEST_BYTES = 64 << 20
#: TOML is parsed in pure Python, so a TOML request is held to less.
MAX_TOML_BYTES = 8 << 20


def format_for(name: str) -> Format:
    """``.toml`` is TOML; everything else (``.json``, stdin, planner output) is JSON."""
    return "toml" if name.lower().endswith(".toml") else "json"


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            # json keeps the last value silently: a duplicated key is a typo to report
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def decode(raw: bytes, name: str, fmt: Format | None = None) -> Any:
    """Parse the document (JSON or TOML by ``fmt``, else by :func:`format_for`)."""
    fmt = fmt or format_for(name)
    if len(raw) > MAX_REQUEST_BYTES:
        raise BadInput(f"{name}: larger than {MAX_REQUEST_BYTES >> 20} MiB")
    if fmt == "toml" and len(raw) > MAX_TOML_BYTES:
        raise BadInput(f"{name}: larger than {MAX_TOML_BYTES >> 20} MiB (the limit for TOML)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{name}: not UTF-8 text (byte {exc.start})") from None
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise BadInput(f"{name}: empty {fmt.upper()} document")
    if fmt == "toml":
        import tomllib  # only for a TOML document (bounded.loads_toml)

        try:
            return bounded.loads_toml(text)
        except tomllib.TOMLDecodeError as exc:
            raise BadInput(f"{name}: invalid TOML: {_one_line(str(exc))}") from None
        except ValueError as exc:
            raise BadInput(f"{name}: refused TOML: {_one_line(str(exc))}") from None
    try:
        return bounded.loads_json(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise BadInput(
            f"{name}: invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except ValueError as exc:
        raise BadInput(f"{name}: invalid JSON: {_one_line(str(exc))}") from None


def is_goal(data: Any) -> bool:
    """A goal request (``{"goal": "..."}``), which the manager's planner turns into jobs."""
    return isinstance(data, dict) and "goal" in data


def spec_dicts(data: Any, name: str) -> list[dict[str, Any]]:
    """The job specs in a decoded document, in order; shape errors raise BadInput."""
    if is_goal(data):
        raise BadInput(
            f"{name}: a goal request goes in inbox/ for the manager's planner, not to farro submit"
        )
    if not isinstance(data, dict):
        raise BadInput(
            f'{name}: expected a job spec object or {{"jobs": [...]}}, not a {_kind(data)}'
        )
    if "jobs" not in data:
        return [data]
    extra = sorted(set(data) - {"jobs"})
    if extra:
        raise BadInput(
            f'{name}: unknown top-level field {extra[0]!r} beside "jobs" '
            "(a file holds one spec, or only a jobs list)"
        )
    jobs = data["jobs"]
    if not isinstance(jobs, list):
        raise BadInput(f'{name}: "jobs" must be a list of job specs, not a {_kind(jobs)}')
    if not jobs:
        raise BadInput(f'{name}: "jobs" is empty; nothing to submit')
    for i, spec in enumerate(jobs):
        if not isinstance(spec, dict):
            raise BadInput(f"{name}: jobs[{i}] must be a job spec object, not a {_kind(spec)}")
    return jobs


def parse_request(raw: bytes, name: str, fmt: Format | None = None) -> list[dict[str, Any]]:
    """Decode a request file into its (not yet validated) job spec objects."""
    return spec_dicts(decode(raw, name, fmt), name)


def validate(specs: Sequence[dict[str, Any]], name: str) -> list[JobSpec]:
    """Validate every spec (all or nothing); ids given twice in one request are refused."""
    from farro_core.envelope import parse_spec

    out: list[JobSpec] = []
    for i, data in enumerate(specs):
        where = name if len(specs) == 1 else f"{name}: jobs[{i}]"
        _check_strings(data, where)
        out.append(parse_spec(data, where))
    check_unique_ids(out, name)
    return out


def load_specs(raw: bytes, name: str, fmt: Format | None = None) -> list[JobSpec]:
    """Bytes of a request file -> validated job specs, or one line of BadInput."""
    return validate(parse_request(raw, name, fmt), name)


def check_unique_ids(specs: Sequence[JobSpec], name: str) -> None:
    """Two specs naming one id would publish the first and refuse the second."""
    seen: set[str] = set()
    for spec in specs:
        if spec.id is not None:
            if spec.id in seen:
                raise BadInput(f"{name}: job id {spec.id} is given twice")
            seen.add(spec.id)


def _check_strings(value: Any, where: str) -> None:
    """Refuse NUL anywhere in a spec, naming where: it cannot reach argv, env or a file name."""
    found = nul_at(value)
    if found is None:
        return
    path, in_key = found
    if in_key:
        raise BadInput(f"{where}: {path or '(top level)'}: a key may not contain NUL")
    raise BadInput(f"{where}: {path or '(value)'}: may not contain NUL")


def _kind(value: Any) -> str:
    return {
        list: "list",
        dict: "object",
        str: "string",
        int: "number",
        float: "number",
        bool: "boolean",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _one_line(text: str) -> str:
    return " ".join(text.split())
