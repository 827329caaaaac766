"""The job envelope: an immutable prompt, a persisted lifecycle, a transient runtime.

``Prompt`` maps onto prompt.json (written once, never rewritten), ``Lifecycle``
onto job.json (replaced atomically by every commit), and ``Runtime`` holds what
only this process knows (where the job sits now, the lock it holds). Keeping them
apart means a commit can never touch the job's definition.

No ``from __future__ import annotations``: pydantic would evaluate each field's
annotation from its string when it builds a model, ~1% of a cold ``farro submit``.
"""

import os
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import to_json

from farro_core import bounded
from farro_core.clock import utcnow
from farro_core.errors import BadInput, Corrupt
from farro_core.globs import check_glob
from farro_core.ids import ID_PATTERN
from farro_core.transitions import Status
from farro_core.validation import explain, has_nul, nul_at, without_plugins
from farro_core.work import Work

SCHEMA_VERSION = "1.0.0"
MAX_PROMPT_BYTES = 1 << 20
_RUBRIC_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_schema_version(value: str) -> str:
    major = value.split(".", 1)[0]
    if major != SCHEMA_VERSION.split(".", 1)[0]:
        raise ValueError(
            f"unsupported schema_version {value!r}: this FARRO reads {SCHEMA_VERSION} "
            "(a newer FARRO wrote it, or it is not a FARRO file)"
        )
    if not re.fullmatch(r"\d+\.\d+\.\d+", value):
        raise ValueError(f"schema_version {value!r} is not MAJOR.MINOR.PATCH")
    return value


#: every file's schema_version: this major version, MAJOR.MINOR.PATCH
SchemaVersion = Annotated[str, AfterValidator(check_schema_version)]


class _Strict(BaseModel):
    """Unknown fields are refused: a typo must never silently drop a setting.

    Numbers must be finite: an infinite timeout would serialise as JSON no reader
    accepts, and the job would be corrupt from birth. Everything read from outside
    is validated in strict mode too (no ``"3"`` for 3, no ``true`` for 1), see
    :func:`parse_spec`, :func:`load_prompt` and :func:`load_lifecycle`.

    Built on first use, not at import (``defer_build``), but for the models of a
    job's definition, built at the end of this module: a submit validates and
    writes a definition, never a claim or a result, so a cold ``farro submit``
    builds neither (nor :class:`~farro_core.work.Work`, which a result holds).
    Building one later costs its process a few milliseconds, once (``Lifecycle``,
    with all it holds: ~6 ms).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, defer_build=True)


class RubricItem(_Strict):
    id: str
    description: str = ""
    check: str | None = None
    required: bool = True
    timeout_s: float = Field(default=600, gt=0)

    @field_validator("check")
    @classmethod
    def _check(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("a rubric check may not be empty (omit it for an ungraded item)")
        return v

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not _RUBRIC_ID.fullmatch(v):
            raise ValueError(f"rubric id {v!r} must match {_RUBRIC_ID.pattern}")
        return v


#: the agent presets FARRO knows (farro_core.agents): a bare string naming one is that preset
PRESETS = ("claude", "codex", "gemini", "aider")


class AgentPreset(_Strict):
    """``{preset = "claude", model = "…", args = [...], allow_tools = [...]}``."""

    preset: Literal["claude", "codex", "gemini", "aider"]
    model: str | None = None
    args: list[str] = Field(default_factory=list)
    allow_tools: list[str] = Field(default_factory=list)

    @field_validator("model")
    @classmethod
    def _model(cls, v: str | None) -> str | None:
        if v is not None and (not v.strip() or v.startswith("-")):
            raise ValueError(f"model {v!r} must be a model name")
        return v

    @field_validator("args", "allow_tools")
    @classmethod
    def _items(cls, v: list[str]) -> list[str]:
        if any(not a for a in v):
            raise ValueError("items may not be empty")
        return v


def agent_text(agent: AgentPreset | list[str] | str) -> str:
    """An agent in one line, for people: ``claude preset (model m, allow Bash)``, argv joined."""
    if isinstance(agent, str):
        return agent
    if isinstance(agent, list):
        return " ".join(agent)
    extra = [f"model {agent.model}"] if agent.model else []
    extra += [f"allow {', '.join(agent.allow_tools)}"] if agent.allow_tools else []
    extra += [f"args {' '.join(agent.args)}"] if agent.args else []
    return f"{agent.preset} preset" + (f" ({'; '.join(extra)})" if extra else "")


def preset_of(spec: "_JobFields", default: object) -> AgentPreset | None:
    """The preset job ``spec`` runs (its own agent, else ``default``, the agent
    setting), or None when it runs a command."""
    agent = spec.agent if spec.agent is not None else default
    return agent if isinstance(agent, AgentPreset) else None


def as_preset(v: Any) -> Any:
    """A bare preset name (``"claude"``) is that preset; anything else is left as given."""
    if isinstance(v, str) and v.strip() in PRESETS:
        return AgentPreset(preset=v.strip())
    return v


AgentCommand = AgentPreset | list[str] | str | None


class Lineage(_Strict):
    """Where a follow-up job comes from (``farro retry``): its parent, and what it
    starts from. Kept in prompt.json, so it never changes."""

    parent: Annotated[str, Field(pattern=ID_PATTERN.pattern)]
    #: the parent's work commit this job starts from (``--from-work``); None: the usual base
    from_work: str | None = Field(default=None, pattern=r"^[0-9a-f]{40}([0-9a-f]{24})?$")
    #: the parent's base branch, where this job's work lands by default (with ``from_work``)
    base_branch: str | None = None


class _JobFields(_Strict):
    """Fields a job definition shares between a submitted spec and prompt.json.

    Never validated itself, so never built (its subclasses are, at import).
    """

    prompt: str
    title: str | None = None
    rubric: list[RubricItem] = Field(default_factory=list)
    allowed_paths: list[str] = Field(default_factory=lambda: ["**"])
    workspace: str | None = None
    agent: AgentCommand = None
    timeout_s: float = Field(default=3600, gt=0)
    max_attempts: int = Field(default=3, ge=1, le=1000)
    priority: int = Field(default=0, ge=-1_000_000, le=1_000_000)
    labels: dict[str, str] = Field(default_factory=dict)
    #: judge paths the workspace's ignore rules cover like any other (None: the setting)
    judge_ignored: bool | None = None
    #: a plain directory's ignore rules, gitignore syntax (None: the setting)
    ignore_file: str | None = None
    #: a follow-up's parent (``farro retry``); None for a job of its own
    lineage: Lineage | None = None

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("prompt may not be empty")
        if len(v.encode()) > MAX_PROMPT_BYTES:
            raise ValueError(f"prompt exceeds {MAX_PROMPT_BYTES} bytes")
        return v

    @field_validator("title")
    @classmethod
    def _title(cls, v: str | None) -> str | None:
        if v is not None and len(v) > 200:
            raise ValueError("title exceeds 200 characters")
        return v

    @field_validator("allowed_paths")
    @classmethod
    def _allowed(cls, v: list[str]) -> list[str]:
        return [check_glob(p) for p in v]

    @model_validator(mode="after")
    def _no_nul(self) -> "_JobFields":
        """NUL can reach neither argv, env nor a file name intact: refuse it anywhere.

        An after-validator: a before-validator would make strict JSON validation
        see Python objects, and refuse every datetime string in prompt.json.
        """
        if has_nul(self):  # its fields as they are: no dump made to look at them
            raise ValueError("a job spec may not contain NUL characters")
        return self

    @field_validator("workspace")
    @classmethod
    def _workspace(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not v.strip():
            raise ValueError("workspace must be a non-empty path")
        expanded = os.path.expanduser(v)
        if not os.path.isabs(expanded):
            raise ValueError(
                f"workspace {v!r} is relative; give an absolute path "
                "(a relative one would depend on where the worker runs)"
            )
        return expanded

    @field_validator("ignore_file")
    @classmethod
    def _ignore_file(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("ignore_file may not be empty (omit it for none)")
        return v

    @field_validator("agent", mode="before")
    @classmethod
    def _preset_name(cls, v: Any) -> Any:
        return as_preset(v)

    @field_validator("agent")
    @classmethod
    def _agent(cls, v: AgentCommand) -> AgentCommand:
        if isinstance(v, list) and (not v or not all(v)):
            raise ValueError("agent argv must be a non-empty list of non-empty strings")
        if isinstance(v, str) and not v.strip():
            raise ValueError("agent command may not be empty")
        return v

    @field_validator("rubric")
    @classmethod
    def _rubric(cls, v: list[RubricItem]) -> list[RubricItem]:
        ids = [r.id for r in v]
        if len(ids) != len(set(ids)):
            raise ValueError("rubric ids must be unique")
        return v

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: dict[str, str]) -> dict[str, str]:
        for key in v:
            if not key or len(key) > 128:
                raise ValueError(f"label key {key!r} must be 1-128 characters")
        return v


class JobSpec(_JobFields):
    """What a user submits. ``id`` is optional: create assigns a fresh one."""

    schema_version: SchemaVersion | None = None
    id: str | None = Field(default=None, pattern=ID_PATTERN.pattern)


class Prompt(_JobFields):
    """prompt.json: the job's definition, immutable from creation on."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    id: Annotated[str, Field(pattern=ID_PATTERN.pattern)]
    title: str
    created_at: datetime
    created_by: str


class Claim(_Strict):
    worker: str
    host: str
    boot_id: str
    pid: int
    pid_started_at: int | None
    token: str
    claimed_at: datetime


def storable(text: str) -> str:
    """``text`` with any lone surrogate replaced (U+FFFD), so job.json can hold it.

    A file name that is not UTF-8 reaches Python as lone surrogates
    (``surrogateescape``); such a string cannot be written as JSON, and a result
    holding one would make its commit fail.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return text


class RubricVerdict(_Strict):
    id: str
    passed: bool | None  # None: the item has no check (ungraded)
    required: bool = True
    #: None in results recorded before check states existed (then ``passed`` tells)
    state: Literal["passed", "failed", "error", "timed_out", "ungraded"] | None = None
    exit_code: int | None = None
    output_tail: str = ""

    @field_validator("output_tail")
    @classmethod
    def _storable(cls, v: str) -> str:
        return storable(v)


class Landing(_Strict):
    """The job's work brought into a branch of its repository by ``farro land``."""

    at: datetime
    by: str
    into: str  # the branch
    mode: Literal["squash", "merge", "ff-only"]
    attempt: int  # whose work commit was landed
    work_commit: str
    onto: str  # the branch's tip before
    commit: str  # the branch's tip after: the resulting commit

    def text(self) -> str:
        """``into main as 1a2b3c4d5e6f (squash), 2026-11-30 06:27:07Z by ops``."""
        at = self.at.isoformat(timespec="seconds").replace("+00:00", "Z").replace("T", " ")
        return f"into {self.into} as {self.commit[:12]} ({self.mode}), {at} by {self.by}"


class Kept(_Strict):
    """The operator's mark (``farro keep``): ``farro gc`` leaves the job as it is, its
    ``farro/<id>`` branch, refs, logs and directory."""

    at: datetime
    by: str

    def text(self) -> str:
        """``2026-11-30 06:27:07Z by ops``."""
        at = self.at.isoformat(timespec="seconds").replace("+00:00", "Z").replace("T", " ")
        return f"{at} by {self.by}"


def _unset(value: object) -> bool:
    return value is None


class Result(_Strict):
    attempt: int
    exit_code: int | None
    started_at: datetime
    finished_at: datetime
    duration_s: float
    timed_out: bool = False
    killed: bool = False
    rubric: list[RubricVerdict] = Field(default_factory=list)
    verdict: Literal["passed", "failed", "ungraded"] | None = None
    violations: list[str] = Field(default_factory=list)
    log: str | None = None
    base_commit: str | None = None
    work: Work | None = None
    report: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    #: set by ``farro land``; the job stays succeeded (landing is no status change)
    landed: Landing | None = None

    @field_validator("violations")
    @classmethod
    def _storable_paths(cls, v: list[str]) -> list[str]:
        return [storable(p) for p in v]

    @field_validator("error")
    @classmethod
    def _storable_error(cls, v: str | None) -> str | None:
        return None if v is None else storable(v)

    @field_validator("report")
    @classmethod
    def _bounded_report(cls, v: dict[str, Any]) -> dict[str, Any]:
        """The runner bounds an agent's report when it reads it; this is the backstop."""
        bounded.check(v, max_depth=16)
        return v


def one_line(reason: str) -> str:
    """A lifecycle's reason as job.json keeps it: one line, at most 500 characters."""
    return storable(" ".join(reason.split())[:500])


class Lifecycle(_Strict):
    """job.json. A commit makes a new value with ``revision + 1``; nothing mutates it."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    id: Annotated[str, Field(pattern=ID_PATTERN.pattern)]
    status: Status
    attempt: int = Field(ge=0)
    revision: int = Field(ge=1)
    #: attempt count at the last operator requeue: max_attempts counts from there
    attempt_base: int = Field(default=0, ge=0)
    claim: Claim | None = None
    not_before: datetime | None = None
    result: Result | None = None
    #: ``farro keep``: written only when set, so an unmarked job's job.json has the bytes
    #: it had before the mark existed (and an older FARRO on the same root still reads it)
    kept: Kept | None = Field(default=None, exclude_if=_unset)
    reason: str = ""
    created_at: datetime
    updated_at: datetime

    @field_validator("reason")
    @classmethod
    def _one_line(cls, v: str) -> str:
        return one_line(v)

    @model_validator(mode="after")
    def _consistent(self) -> "Lifecycle":
        if self.attempt_base > self.attempt:
            raise ValueError("attempt_base exceeds attempt")
        return self

    def attempts_left(self, max_attempts: int) -> int:
        return max(0, max_attempts - (self.attempt - self.attempt_base))


class Runtime(BaseModel):
    """What only this process knows. Never persisted."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, defer_build=True)

    root: Path
    path: Path
    loaded_at: datetime = Field(default_factory=utcnow)


class Envelope(BaseModel):
    """One job in memory: ``prompt`` + ``lifecycle`` + ``runtime``."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, defer_build=True)

    prompt: Prompt
    lifecycle: Lifecycle
    runtime: Runtime

    @property
    def id(self) -> str:
        return self.lifecycle.id

    @property
    def status(self) -> Status:
        return self.lifecycle.status

    @property
    def path(self) -> Path:
        return self.runtime.path


# the models of a job's definition, built now (the others on first use, see _Strict)
with without_plugins():
    for _model in (RubricItem, AgentPreset, Lineage, JobSpec, Prompt):
        _model.model_rebuild()


def dump(model: BaseModel) -> bytes:
    return (model.model_dump_json(indent=2) + "\n").encode()


def queued(job_id: str, reason: str, at: datetime) -> Lifecycle:
    """A new job's lifecycle (queued, revision 1), made without building
    :class:`Lifecycle`: ``job_id`` is a valid id (``new_id()``, a validated spec's)
    and ``at`` is aware, and the reason is made one line as its validator would."""
    if not ID_PATTERN.fullmatch(job_id):
        raise ValueError(f"queued: invalid job id {job_id!r}")
    return Lifecycle.model_construct(
        id=job_id,
        status=Status.QUEUED,
        attempt=0,
        revision=1,
        reason=one_line(reason),
        created_at=at,
        updated_at=at,
    )


def dump_queued(lc: Lifecycle) -> bytes:
    """A new job's job.json, the bytes :func:`dump` would write, from pydantic-core's
    serialisation of its fields: Lifecycle's own serializer would build the schemas
    of Result and Work too (~2% of a cold submit). The fields of a lifecycle from
    :func:`queued` are plain values; tests/core/test_envelope.py checks the bytes."""
    if lc.claim is not None or lc.result is not None or lc.kept is not None:
        raise ValueError("dump_queued: only a new job's lifecycle (no claim, result or mark)")
    fields = {k: v for k, v in lc if k != "kept"}  # omitted when unset, as Lifecycle writes it
    return to_json(fields, indent=2) + b"\n"


def parse_spec(data: Any, where: str = "spec") -> JobSpec:
    """Validate one job spec; raise :class:`BadInput` with every problem on one line."""
    if not isinstance(data, dict):
        raise BadInput(f"{where}: a job spec must be an object, not {type(data).__name__}")
    try:
        bounded.check(data)
    except bounded.Unbounded as exc:
        raise BadInput(f"{where}: {exc}") from None
    if nul_at(data) is not None:  # before any field's own check, so the reason is always this one
        raise BadInput(f"{where}: a job spec may not contain NUL characters")
    try:
        return JobSpec.model_validate(data, strict=True)
    except ValidationError as exc:
        raise BadInput(explain(exc, where)) from None


def load_prompt(raw: bytes, where: str) -> Prompt:
    try:
        return Prompt.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        raise Corrupt(explain(exc, where)) from None


def load_lifecycle(raw: bytes, where: str) -> Lifecycle:
    try:
        return Lifecycle.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        raise Corrupt(explain(exc, where)) from None


def default_title(prompt: str) -> str:
    first = next((ln.strip() for ln in prompt.splitlines() if ln.strip()), "")
    return first[:200]
