"""Change detection: training the FC-Siam-diff model of ``minires.models.build_change_net`` on
generated (before, after, mask) pairs, with the run directories of ``minires.train``."""
