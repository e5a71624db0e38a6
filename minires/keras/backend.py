"""``keras.backend``: the default float type, and ``clear_session`` (fresh layer names)."""

from ..initializers import floatx, set_floatx
from ..layers import reset_names


def clear_session() -> None:
    """Restart automatic layer names (conv2d, conv2d_1, ...) from the beginning."""
    reset_names()


__all__ = ["clear_session", "floatx", "set_floatx"]
