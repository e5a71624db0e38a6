"""The ops: hand-written forward and backward passes, vectorized over an array module.

Every op follows one contract::

    out, cache = <op>_forward(inputs..., **options)
    grads = <op>_backward(dout, cache)    # one gradient per differentiable input, in input order

Layouts are Keras': activations NHWC, conv kernels HWIO, dense kernels (in, out). Each op keeps
the dtype it is given. Their naive loop references live in ``minires.reference``.

``conv2d_forward(..., algorithm="auto" | "im2col" | "winograd")`` chooses how a convolution
is computed (``conv.choose_algorithm`` says what "auto" picks). ``adam_update``,
``adam_torch_update`` and ``sgd_update`` (each with a ``*_many`` form for lists of parameters)
are the in-place parameter updates the optimizers call. On the ``numba`` backend the ops
run Numba kernels where those are faster (``minires.backend.kernel``); results agree with the array code to rounding.
"""

from .activation import (bias_relu_backward, bias_relu_forward, relu_backward, relu_forward,
                         sigmoid_backward, sigmoid_forward)
from .add import add_backward, add_forward, subtract_backward, subtract_forward
from .concat import concat_backward, concat_forward
from .conv import (ConvMaxPoolCache, conv2d_backward, conv2d_forward, conv2d_maxpool_backward,
                   conv2d_maxpool_forward)
from .dense import dense_backward, dense_forward
from .difference import abs_diff_backward, abs_diff_forward
from .flatten import flatten_backward, flatten_forward
from .loss import (mean_squared_error, mean_squared_error_backward, mean_squared_error_forward,
                   probability_cross_entropy, probability_cross_entropy_backward,
                   probability_cross_entropy_forward, sigmoid_binary_cross_entropy,
                   sigmoid_binary_cross_entropy_backward, sigmoid_binary_cross_entropy_forward,
                   softmax_cross_entropy, softmax_cross_entropy_backward,
                   softmax_cross_entropy_forward)
from .normalize import instance_norm_backward, instance_norm_forward
from .pool import maxpool2d_backward, maxpool2d_forward
from .softmax import softmax, softmax_backward, softmax_forward
from .update import (adam_torch_update, adam_torch_update_many, adam_update, adam_update_many,
                     sgd_update, sgd_update_many)
from .upsample import upsample2d_backward, upsample2d_forward
from ..windows import same_padding

__all__ = [
    "abs_diff_backward", "abs_diff_forward",
    "adam_torch_update", "adam_torch_update_many", "adam_update", "adam_update_many",
    "add_backward", "add_forward",
    "bias_relu_backward", "bias_relu_forward",
    "concat_backward", "concat_forward",
    "ConvMaxPoolCache", "conv2d_backward", "conv2d_forward", "conv2d_maxpool_backward",
    "conv2d_maxpool_forward",
    "dense_backward", "dense_forward",
    "flatten_backward", "flatten_forward",
    "instance_norm_backward", "instance_norm_forward",
    "maxpool2d_backward", "maxpool2d_forward",
    "mean_squared_error", "mean_squared_error_backward", "mean_squared_error_forward",
    "probability_cross_entropy", "probability_cross_entropy_backward",
    "probability_cross_entropy_forward",
    "relu_backward", "relu_forward",
    "same_padding", "sgd_update", "sgd_update_many",
    "sigmoid_backward", "sigmoid_binary_cross_entropy", "sigmoid_binary_cross_entropy_backward",
    "sigmoid_binary_cross_entropy_forward", "sigmoid_forward",
    "softmax", "softmax_backward", "softmax_cross_entropy", "softmax_cross_entropy_backward",
    "softmax_cross_entropy_forward", "softmax_forward", "subtract_backward", "subtract_forward",
    "upsample2d_backward", "upsample2d_forward",
]
