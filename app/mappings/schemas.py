"""Request and response shapes of /api/v1/mappings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.api.params import no_nul

MAX_ENTRIES_PER_CALL = 10_000

Key = Annotated[str, StringConstraints(min_length=1, max_length=256), AfterValidator(no_nul)]


class MappingEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    our_key: str
    their_key: str
    origin: str = Field(description="config (seeded from the YAML) | api")
    updated_at: datetime


class MappingPut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entries: dict[Key, Key] = Field(
        max_length=MAX_ENTRIES_PER_CALL,
        description="our key → their key; existing entries are overwritten",
        examples=[{"TSHIRT-RED-M": "1042"}],
    )


class MappingPutOut(BaseModel):
    updated: int = Field(description="entries inserted or overwritten")
    released_deliveries: list[int] = Field(
        description="parked deliveries whose missing mappings now all exist; queued again"
    )


class MappingDelete(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keys: list[Key] = Field(max_length=MAX_ENTRIES_PER_CALL, description="our keys to delete")


class MappingDeleteOut(BaseModel):
    deleted: int


class MappingImportOut(BaseModel):
    updated: int = Field(description="entries in the file, inserted or overwritten")
    deleted: int = Field(description="entries not in the file, deleted (only with replace=true)")
    released_deliveries: list[int] = Field(
        description="parked deliveries whose missing mappings now all exist; queued again"
    )


class MappingImportProgress(BaseModel):
    """One line of an import's progress (``Accept: application/x-ndjson``)."""

    stage: str = Field(
        description="upsert (entries stored) | delete (replace=true: entries not in the file "
        "deleted) | done (the last line, with the result) | failed (the last line, with the "
        "error; what was committed before it stays, importing the file again finishes it)"
    )
    done: int | None = Field(default=None, description="entries done in this stage so far")
    total: int | None = Field(default=None, description="entries this stage has to do")
    result: MappingImportOut | None = Field(default=None, description="with stage done")
    error: dict[str, str] | None = Field(default=None, description="with stage failed")
