"""Settings: farro.toml, then FARRO_* environment variables, then flags.

An unknown key in farro.toml is refused: a typo must not silently fall back to a
default. Environment variables are read only for known keys, because agents run
with FARRO_JOB_ID and friends in their environment.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal, cast, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from farro_core.bounded import loads_toml
from farro_core.envelope import AgentPreset, as_preset
from farro_core.errors import BadInput
from farro_core.fs import read_file
from farro_core.validation import explain, without_plugins

Command = list[str] | str | None


class Settings(BaseModel):
    """Every setting, with its default and what it does.

    The descriptions are the documentation: README.md's settings table and
    docs/spec.md §8 are generated from them (``python -m farro_tui.docgen``), and
    tests/test_docs.py fails when they drift from this class.
    ``default_text`` says what a default means where its value would not.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, defer_build=True)

    workers: int = Field(
        default=2, ge=0, le=256, description="embedded workers per console / headless process"
    )
    agent: AgentPreset | Command = Field(
        default=None,
        description="the agent of jobs that name none: a preset (`claude`, `codex`, `gemini`, "
        "`aider`, or a table `{preset = …, model = …, args = […], allow_tools = […]}`), "
        "an argv list (no shell) or a shell string",
        json_schema_extra={"default_text": "the bundled demo agent"},
    )
    planner: Command = Field(
        default=None,
        description="turns an inbox goal into jobs: goal on stdin → JSON list of specs on stdout",
        json_schema_extra={"default_text": "the bundled demo planner"},
    )
    timeout_s: float = Field(
        default=3600, gt=0, description="the per-attempt timeout of jobs that set no `timeout_s`"
    )
    max_attempts: int = Field(
        default=3, ge=1, description="the attempt budget of jobs that set no `max_attempts`"
    )
    heartbeat_s: float = Field(
        default=2,
        gt=0,
        description="how often a running worker touches its claim lock (the heartbeat) "
        "and checks it still owns the job",
    )
    stale_after_s: float = Field(
        default=30,
        gt=0,
        description="a heartbeat older than this makes the job stale "
        "(at least twice `heartbeat_s`)",
    )
    auto_requeue_stale: bool = Field(
        default=False,
        description="the manager requeues stale jobs whose worker is gone, while attempts remain",
    )
    retry_backoff_s: float = Field(
        default=5, ge=0, description="delay before the first automatic retry; doubles per retry"
    )
    retry_backoff_max_s: float = Field(
        default=300, ge=0, description="cap on the automatic retry delay"
    )
    watchdog_interval_s: float = Field(
        default=2,
        gt=0,
        description="the manager's sweep period (stale marking, stale policy, inbox rescan)",
    )
    shutdown_grace_s: float = Field(
        default=10,
        ge=0,
        description="how long a stopping worker lets its attempt run before releasing the job",
    )
    kill_grace_s: float = Field(
        default=5,
        ge=0,
        description="SIGTERM → SIGKILL delay for an agent, a check or the planner that is "
        "killed, timed out or released",
    )
    rescan_s: float = Field(
        default=2,
        gt=0,
        description="idle workers rescan `incoming/` this often (file events wake them sooner)",
    )
    log_max_bytes: int = Field(
        default=10 << 20,
        ge=1024,
        description="cap on the agent output kept in each attempt log",
        json_schema_extra={"default_text": "10 MiB"},
    )
    max_queued: int = Field(
        default=0,
        ge=0,
        description="backpressure: `submit` beyond this many queued jobs exits 1, inbox files wait",
        json_schema_extra={"default_text": "0 (no limit)"},
    )
    clock_skew_warn_s: float = Field(
        default=5,
        gt=0,
        description="warn when this host's clock is further than this from the file "
        "system's (liveness never compares host clocks)",
    )
    allow_unsafe_fs: bool = Field(
        default=False,
        description="run workers even where `farro doctor` finds that locks do not "
        "exclude (two workers may then claim one job)",
    )
    keys: dict[str, str] = Field(
        default_factory=dict,
        description='console key remapping by binding id, e.g. `requeue = "R"`',
        json_schema_extra={"default_text": ""},
    )
    judge_ignored: bool = Field(
        default=False,
        description="judge paths the workspace ignores (base commit's .gitignore, or "
        "`ignore_file`) like any other, instead of only recording them",
    )
    ignore_file: str | None = Field(
        default=None,
        description="a plain-directory workspace's ignore rules (gitignore syntax), "
        "relative to the workspace or absolute",
        json_schema_extra={"default_text": "none"},
    )
    env_allow: list[str] | None = Field(
        default=None,
        description="names or fnmatch patterns of the worker's variables that agents, checks "
        "and the planner receive; `FARRO_*` always passes",
        json_schema_extra={"default_text": "all"},
    )
    env_deny: list[str] = Field(
        default_factory=list,
        description='patterns they never receive, applied after `env_allow`, e.g. `["AWS_*"]`',
        json_schema_extra={"default_text": "none"},
    )
    agent_check: bool = Field(
        default=True,
        description="`submit` and the inbox refuse a job whose agent preset lacks its key or "
        "config on this host; turn off where jobs are submitted away from the workers' host",
    )
    containment: Literal["auto", "fallback"] = Field(
        default="auto",
        description='"auto": cgroup v2 where it works, else the subreaper-and-token fallback; '
        '"fallback": never cgroups',
    )

    @field_validator("agent", mode="before")
    @classmethod
    def _preset_name(cls, value: Any) -> Any:
        return as_preset(value)

    @field_validator("ignore_file")
    @classmethod
    def _ignore_file(cls, value: str | None) -> str | None:
        # refused here, not at run time: "" names the workspace itself, which every
        # plain-directory job would then fail on
        if value is not None and (not value.strip() or "\0" in value):
            raise ValueError(f"{value!r} is not a file name (omit ignore_file for none)")
        return value

    @field_validator("env_allow", "env_deny", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        # from a FARRO_ENV_ALLOW / FARRO_ENV_DENY variable: "PATH,HOME,LANG"
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("env_allow", "env_deny")
    @classmethod
    def _patterns(cls, value: list[str] | None) -> list[str] | None:
        for item in value or []:
            if not item or "=" in item or "\0" in item:
                raise ValueError(f"{item!r} is not a variable name or pattern")
        return value

    on_finish: Command = Field(
        default=None,
        description="run for every job that reaches succeeded, failed or killed: an argv "
        "list (no shell) or a shell string; the job's JSON summary on stdin, `FARRO_*` "
        "variables; its failure is logged in the job's history, never changes the job",
        json_schema_extra={"default_text": "none"},
    )
    on_finish_timeout_s: float = Field(
        default=30, gt=0, description="`on_finish` is killed (its process group) after this long"
    )
    bell_on_failure: bool = Field(
        default=False,
        description="the console rings the terminal bell with its notification of a failed job",
    )
    workspace_reuse: Literal["clean", "keep-ignored"] = Field(
        default="clean",
        description="what a worker's pooled worktree keeps between jobs: `clean` nothing "
        "the last job wrote; `keep-ignored` also the files the base commit's .gitignore "
        "ignores (warm caches such as node_modules or .venv)",
    )
    gc_interval_s: float | None = Field(
        default=None,
        gt=0,
        description="run `farro gc` (its default selection) from the manager this often",
        json_schema_extra={"default_text": "off"},
    )
    gc_keep_logs: int = Field(
        default=10,
        ge=1,
        description="`farro gc` keeps this many of a finished job's latest attempt logs",
    )

    @model_validator(mode="after")
    def _beats_often_enough(self) -> Settings:
        # else a healthy worker's job goes stale between two beats, which fences the
        # worker and kills its agent: no job could ever finish
        if self.stale_after_s < 2 * self.heartbeat_s:
            raise ValueError(
                f"stale_after_s ({self.stale_after_s:g}) must be at least twice heartbeat_s "
                f"({self.heartbeat_s:g}), or healthy jobs are marked stale between two beats"
            )
        return self

    def agent_argv(self) -> AgentPreset | list[str] | str:
        return self.agent if self.agent is not None else demo_command("farro_core.demo_agent")

    def planner_argv(self) -> list[str] | str:
        return self.planner if self.planner is not None else demo_command("farro_core.demo_planner")

    def passed_env(self, environ: Mapping[str, str]) -> dict[str, str]:
        """The part of ``environ`` that agents, checks and the planner receive."""
        allow, deny = self.env_allow, self.env_deny
        if allow is None and not deny:  # the default: all of it (asked once per attempt)
            return dict(environ)
        return {
            name: value
            for name, value in environ.items()
            if name.startswith(ENV_PREFIX)
            or (
                (allow is None or any(fnmatchcase(name, p) for p in allow))
                and not any(fnmatchcase(name, p) for p in deny)
            )
        }

    def backoff(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based): doubling, capped."""
        return float(min(self.retry_backoff_s * (2 ** max(0, retry - 1)), self.retry_backoff_max_s))


with without_plugins():  # built now, without pydantic's plugin scan (validation.without_plugins)
    Settings.model_rebuild()


def demo_command(module: str) -> list[str]:
    return [sys.executable, "-m", module]


ENV_PREFIX = "FARRO_"


def load_settings(root: Path | None, flags: dict[str, Any] | None = None) -> Settings:
    """Merge the three sources; raise :class:`BadInput` naming the file and key.

    farro.toml and flags are validated strictly (``workers = "2"`` or ``true`` is a
    mistake to report, not to coerce); an environment variable is text by nature,
    so it alone is converted to the field's type first.
    """
    data: dict[str, Any] = {}
    where = "settings"
    if root is not None:
        toml_path = root / "farro.toml"
        try:
            raw = read_file(toml_path, limit=1 << 20)
        except FileNotFoundError:
            raw = None
        except (OSError, ValueError) as exc:
            raise BadInput(f"{toml_path}: {exc}") from None
        if raw is not None:
            import tomllib  # only for a root that has a farro.toml (bounded.loads_toml)

            where = str(toml_path)
            try:
                data.update(loads_toml(raw.decode()))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise BadInput(f"{toml_path}: invalid TOML: {_one_line(str(exc))}") from None
            except ValueError as exc:
                raise BadInput(f"{toml_path}: refused TOML: {exc}") from None
    for name, info in Settings.model_fields.items():
        if name == "keys":
            continue
        var = ENV_PREFIX + name.upper()
        value = os.environ.get(var)
        is_list = _is_list(info.annotation)
        if is_list and value is not None and not value.strip(" \t,"):
            # set but empty (`FARRO_ENV_ALLOW=` in a script) is unset, as in most tools:
            # it does not turn every variable off, nor clear farro.toml's env_deny
            value = None
        if value is not None:
            where = f"{where} (with {var})"
            try:
                if is_list:  # "PATH,HOME,LANG"
                    data[name] = [item.strip() for item in value.split(",") if item.strip()]
                else:
                    data[name] = TypeAdapter(cast(Any, info.annotation)).validate_strings(value)
            except ValidationError as exc:
                msg = _one_line(exc.errors()[0]["msg"])
                raise BadInput(f"{where}: {name}: {msg}") from None
    for name, value in (flags or {}).items():
        if value is not None:
            data[name] = value
    try:
        return Settings.model_validate(data, strict=True)
    except ValidationError as exc:
        raise BadInput(explain(exc, where)) from None


def _is_list(annotation: Any) -> bool:
    """A list setting (maybe optional): its environment variable is a comma list."""
    if get_origin(annotation) is list:
        return True
    args = get_args(annotation)  # a command (list | str) takes a string as it is
    return str not in args and any(get_origin(arg) is list for arg in args)


def _one_line(text: str) -> str:
    return " ".join(text.split())
