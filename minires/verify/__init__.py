"""``minires verify``: minires as an oracle for the math of other frameworks, op by op.

For every op (conv2d, maxpool2d, relu, add, flatten, dense, softmax, softmax cross-entropy)
and every output (the forward value and each gradient), four kinds of opinion on the same
cases: minires' array code on each CPU backend, its loop reference, central differences in
float64, and each framework, run by its adapter (``minires.frameworks``) in a process of its
own. A framework that disagrees with all of minires' opinions is the outlier; a difference
of definition (the max-pool tie rule, ReLU'(0), where 'same' puts the odd pixel, soft labels)
is named as a convention when minires recomputed on the framework's side agrees with it.

    from minires.verify import verify, format_text
    report = verify(["torch"], ops=["maxpool2d"], dtypes=["float64"])
    print(format_text(report)); report.to_json()

The modules, in the order a case meets them: ``specs`` (the ops' inputs and outputs),
``cases``, ``opinions`` (minires' side), ``runner`` and ``worker`` (the frameworks' side),
``compare`` (relative error, floors, tolerances), ``conventions``, ``verdicts``, ``engine``,
``report``, ``replay`` (reproducers). Whole models: ``models`` (predictions, loss, weight
gradients and optimizer steps carried into each framework) and ``model_worker`` (its process
per framework). docs/verify.md and docs/verify-models.md are the user's guides.
"""

from .engine import Report, verify
from .replay import replay, save_failures
from .report import format_markdown, format_text, write_json

__all__ = ["Report", "format_markdown", "format_text", "replay", "save_failures", "verify", "write_json"]
