"""``minires verify``: minires as an independent oracle for other frameworks' math.

``models``: whole models (predictions, loss, weight gradients, optimizer steps) carried into
each framework, which runs in a process of its own (``model_worker``).
"""
