"""The kernel interface: every kernel an op may ask for, by name, with its contract.

An op asks ``minires.backend.kernel(name, *arrays)`` for one of these names and gets the
current backend's function for those arrays, or None, and then runs its own array code. A
backend's kernel module provides the entries it has (a subset: ``minires.kernels.numba`` for
NumPy arrays on backend ``numba``, ``minires.kernels.gpu_cupy`` for CuPy arrays on backend
``cupy``) under these names, and every function it offers is one of them. A kernel returns
what the array code it replaces returns (the same values to rounding, the same dtypes and
shapes), so the op's cache is the same on either path.

The contracts below use the shapes of ``minires.ops``: activations NHWC, ``window`` a
``minires.windows.Window``. A kernel writes only its own outputs unless its contract says
that it overwrites an argument. Outputs are C-contiguous arrays of the inputs' device and
float dtype; inputs may have any memory layout unless the contract says otherwise.
"""

from __future__ import annotations

KERNELS: dict[str, str] = {
    # --- convolution -------------------------------------------------------------------------
    "im2col": """im2col(x, window) -> cols
        The windows of x (N, H, W, C), padded with zeros as window.padding says, without
        building the padded copy: cols (N, h_out, w_out, kh, kw, C), the array
        ops.im2col.im2col(pad_nhwc(x, window.padding), window) returns (a view of x for a
        1x1 window at stride 1 without padding).""",
    "col2im": """col2im(cols, x_shape, window) -> dx
        The adjoint of im2col, cropped to the input: dx (x_shape), each input pixel the sum
        of the window rows (N, h_out, w_out, kh, kw, C) that read it, in row-major (i, j)
        order; the padding's share is dropped.""",
    "im2col_conv_forward": """im2col_conv_forward(x, w2d, bias, window, relu, keep_cols) -> (y, positive, cols)
        A whole im2col convolution: y (N, h_out, w_out, C_out) = im2col(x) @ w2d + bias,
        w2d (kh*kw*C, C_out), bias (C_out,) or None; with relu, y = max(that, 0) with NaN
        kept. With keep_cols (a backward pass follows): positive, the ReLU's mask y > 0
        (None without relu), and cols as im2col gives it; without, both None.""",
    "im2col_conv_maxpool_forward": """im2col_conv_maxpool_forward(x, w2d, bias, window, relu) -> y
        For inference: the 2x2, stride-2 max-pool (ops.maxpool2d_forward's values: the
        first maximum of each window in row-major order, a NaN winning) of
        im2col_conv_forward(x, w2d, bias, window, relu, keep_cols=False)'s y, whose height
        and width must be even: y (N, h_out / 2, w_out / 2, C_out).""",
    "im2col_conv_maxpool_training_forward": """im2col_conv_maxpool_training_forward(x, w2d, bias, window, relu) -> (y, argmax, positive) or None
        For training: the 2x2, stride-2 max-pool of z = im2col_conv_forward(x, w2d, bias,
        window, relu=False)'s output, ReLU'd with relu: y, argmax (uint8: the place 0 .. 3,
        row-major, of each window's first maximum of z, a NaN winning, as
        ops.maxpool2d_forward gives it) and with relu positive = (pooled z > 0), else None;
        each (N, h_out / 2, w_out / 2, C_out). None where the kernel does not apply (it says
        where); the caller then runs the ops in turn.""",
    "im2col_conv_maxpool_training_backward": """im2col_conv_maxpool_training_backward(dq, argmax, x, w2d, window, input_grad) -> (dx, dw2d)
        The gradients of im2col_conv_maxpool_training_forward's z from dq, the gradient of
        the pooled z (N, h_out / 2, w_out / 2, C_out): dz = dq at each window's argmax and 0
        elsewhere, dw2d (kh*kw*C, C_out) = cols(x)^T dz, dx (x's shape) = col2im(dz @
        w2d^T); dx is None when input_grad is false.""",
    "im2col_conv_backward": """im2col_conv_backward(dy, cols, positive, w2d, window, x_shape, input_grad) -> (dx, dw2d, db)
        The gradients of im2col_conv_forward from dy (N, h_out, w_out, C_out), its cols and
        its mask positive (None without relu): dz = dy where positive (dy without relu),
        db (C_out,) the column sums of dz, dw2d (kh*kw*C, C_out) = cols^T dz, and
        dx (x_shape) = col2im(dz @ w2d^T); dx is None when input_grad is false.""",
    "winograd_forward_blocked": """winograd_forward_blocked(x, u, bias, padding, tiles, out_hw, f, relu=False, pool=False) -> y
        A Winograd convolution F(m x m, 3 x 3) of x (N, H, W, C_in) with the transformed
        kernel u (alpha^2, C_in, C_out) of ops.winograd.transform_kernel: y (N, h_out, w_out,
        C_out) = transform_output(transform_input(x) @ u) + bias, bias (C_out,) or None;
        with relu, y = max(that, 0) with NaN kept; padding ((top, bottom), (left, right)),
        tiles (th, tw), f an ops.winograd.WinogradTransform. With pool (inference; f.m even
        and out_hw == (th * f.m, tw * f.m)), y is the 2x2, stride-2 max-pool of that
        (ops.maxpool2d_forward's values), (N, h_out / 2, w_out / 2, C_out). None when x
        holds a NaN or an inf (which the transforms would spread over whole tiles): the
        caller then convolves another way.""",
    "winograd_kernel_transform": """winograd_kernel_transform(mat, a) -> out
        mat a mat^T over the first two axes of a (p, p, C_in, C_out), mat (q, p): out (q, q,
        C_in, C_out), as ops.winograd.both_axes computes it: the kernel's transform
        U = G w G^T (ops.winograd.transform_kernel) and its adjoint dw = G^T dU G
        (transform_kernel_grad).""",
    "winograd_backward_blocked": """winograd_backward_blocked(dy, x, u, padding, tiles, f, input_grad) -> (dx, du)
        The gradients of winograd_forward_blocked from dy and the forward's x and u, V made
        again from x: du (alpha^2, C_in, C_out) = V^T dM with dM = transform_output_grad(dy),
        and dx (N, H, W, C_in) = transform_input_grad(dM U^T); dx is None when input_grad is
        false. dw = transform_kernel_grad(du) is the caller's.""",
    # --- pooling -----------------------------------------------------------------------------
    "maxpool2d_forward": """maxpool2d_forward(x, window) -> (y, argmax)
        y (N, h_out, w_out, C) the maximum of each window, the padding reading as -inf and a
        NaN winning (the first NaN); argmax (same shape, dtype windows.argmax_dtype(window))
        = i*pw + j of the window's first maximum in row-major order.""",
    "maxpool2d_forward_value": """maxpool2d_forward_value(x, window) -> y
        maxpool2d_forward's y alone (the same values; a NaN in a window makes it NaN), for
        inference: no argmax is computed or stored.""",
    "maxpool2d_backward": """maxpool2d_backward(dy, argmax, x_shape, window) -> dx
        dx (x_shape): each input pixel the sum of dy over the windows whose argmax is it.""",
    # --- activations -------------------------------------------------------------------------
    "relu_forward": """relu_forward(x) -> (y, positive)
        y = max(x, 0) with NaN kept, positive = x > 0 (bool), both of x's shape.""",
    "relu_backward": """relu_backward(dy, positive) -> dx
        dx = dy where positive, else 0.""",
    "bias_relu": """bias_relu(z, b) -> (y, positive)
        y = max(z + b, 0) with NaN kept, positive = z + b > 0, b (C,) along the last axis
        or None. Overwrites z, which must be a C-contiguous array the caller owns: y is z.""",
    "bias_relu_backward": """bias_relu_backward(dy, positive) -> (dz, db)
        dz = dy where positive, else 0; db (C,) = dz summed over every axis but the last,
        in an order that depends on the shape alone.""",
    # --- loss --------------------------------------------------------------------------------
    "softmax_cross_entropy_forward": """softmax_cross_entropy_forward(logits, targets, sparse) -> (loss, probs)
        probs (N, C) = softmax(logits) and loss the mean of -sum_c t log p over the rows,
        targets class ids (N,) when sparse, else target rows (N, C). loss is a number or a
        0-d array (on the GPU a device array, so that nothing waits for the device).""",
    "softmax_cross_entropy_backward": """softmax_cross_entropy_backward(dloss, probs, targets, sparse) -> dlogits
        dlogits (N, C) = dloss * (p * sum(t) - t) / N, dloss a number or a 0-d array.""",
    # --- parameter updates -------------------------------------------------------------------
    "adam_update": """adam_update(param, grad, m, v, lr_t, beta1, beta2, eps) -> None
        One Adam step in Keras' form: m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g;
        param -= lr_t * m / (sqrt(v) + eps). Overwrites param, m and v, which must be
        C-contiguous and writable, of one shape and dtype with grad.""",
    "adam_update_many": """adam_update_many(params, grads, ms, vs, lr_t, beta1, beta2, eps) -> None
        adam_update for every (param, grad, m, v) of four equally long lists, every array of
        one dtype. Overwrites every param, m and v.""",
}
