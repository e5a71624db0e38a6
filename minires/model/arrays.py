"""The data of a model with several inputs: one array per input, indexed together.

``fit``, ``evaluate`` and ``predict`` slice their data by examples (``x[start:stop]``,
``x[order]``) and count them (``x.shape[0]``). ``InputArrays`` lets a list of arrays, one per
model input, be sliced and counted the same way, so one loop serves models with one input
and models with several.
"""

from __future__ import annotations


class InputArrays:
    """Arrays of one length N along their first axis, sliced together."""

    def __init__(self, arrays):
        self.arrays = list(arrays)

    @property
    def shape(self) -> tuple:
        """(N,): what the loops read of the data, the number of examples."""
        return (self.arrays[0].shape[0],)

    @property
    def ndim(self) -> int:
        return self.arrays[0].ndim

    def __getitem__(self, index) -> "InputArrays":
        return InputArrays([a[index] for a in self.arrays])

    def __len__(self) -> int:
        return self.shape[0]

    def __iter__(self):
        return iter(self.arrays)
