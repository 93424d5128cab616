"""Request and response shapes of /api/v1/mappings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

MAX_ENTRIES_PER_CALL = 10_000

Key = Annotated[str, StringConstraints(min_length=1, max_length=256)]


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
