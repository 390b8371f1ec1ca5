"""A preset as the launch form lists it."""
from __future__ import annotations

from pydantic import BaseModel


class Preset(BaseModel):
    id: str
    title: str
    description: str
    config: dict
