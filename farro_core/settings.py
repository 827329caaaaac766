"""Settings: farro.toml, then FARRO_* environment variables, then flags.

An unknown key in farro.toml is refused: a typo must not silently fall back to a
default. Environment variables are read only for known keys, because agents run
with FARRO_JOB_ID and friends in their environment.
"""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path
from typing import Any, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from farro_core.bounded import loads_toml
from farro_core.envelope import explain
from farro_core.errors import BadInput
from farro_core.fs import read_file

Command = list[str] | str | None


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    workers: int = Field(default=2, ge=0, le=256)
    agent: Command = None  # None: the bundled demo agent
    timeout_s: float = Field(default=3600, gt=0)
    max_attempts: int = Field(default=3, ge=1)
    heartbeat_s: float = Field(default=2, gt=0)
    stale_after_s: float = Field(default=30, gt=0)
    auto_requeue_stale: bool = False
    retry_backoff_s: float = Field(default=5, ge=0)
    retry_backoff_max_s: float = Field(default=300, ge=0)
    watchdog_interval_s: float = Field(default=2, gt=0)
    shutdown_grace_s: float = Field(default=10, ge=0)
    kill_grace_s: float = Field(default=5, ge=0)
    rescan_s: float = Field(default=2, gt=0)
    log_max_bytes: int = Field(default=10 << 20, ge=1024)
    max_queued: int = Field(default=0, ge=0)
    planner: Command = None  # None: the bundled demo planner
    keys: dict[str, str] = Field(default_factory=dict)

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

    def agent_argv(self) -> list[str] | str:
        return self.agent if self.agent is not None else demo_command("farro_core.demo_agent")

    def planner_argv(self) -> list[str] | str:
        return self.planner if self.planner is not None else demo_command("farro_core.demo_planner")

    def backoff(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based): doubling, capped."""
        return float(min(self.retry_backoff_s * (2 ** max(0, retry - 1)), self.retry_backoff_max_s))


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
        if value is not None:
            where = f"{where} (with {var})"
            try:
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


def _one_line(text: str) -> str:
    return " ".join(text.split())
