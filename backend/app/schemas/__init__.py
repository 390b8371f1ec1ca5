"""The API's request bodies and answers (pydantic), by resource — kept out of the routers.

Events (frames, status changes) are not here: their contract is pinwheel/protocol.py, shared with the worker."""
from .accounts import ShareCreate, ShareCreated, ShareOut, UserCreate, UserCreated, UserOut
from .external import (ExternalFinish, ExternalFrame, ExternalStart, FilterGridPayload, Panels, ReconstructionsPayload,
                       SparsityPayload)
from .external import Control as ExternalControl
from .presets import Preset
from .runs import LaunchOut, LaunchRequest, RunEdit, RunOut, Tag
from .sweeps import RandomAxis, SweepOut, SweepRequest, SweepRun

__all__ = ["ExternalControl", "ExternalFinish", "ExternalFrame", "ExternalStart", "FilterGridPayload", "LaunchOut",
           "LaunchRequest", "Panels", "Preset", "RandomAxis", "ReconstructionsPayload", "RunEdit", "RunOut", "ShareCreate",
           "ShareCreated", "ShareOut", "SparsityPayload", "SweepOut", "SweepRequest", "SweepRun", "Tag", "UserCreate",
           "UserCreated", "UserOut"]
