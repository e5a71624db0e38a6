"""``keras.models``: the functional ``Model`` and ``load_model``."""

from ..model import Model
from ..serialization import load_model

__all__ = ["Model", "load_model"]
