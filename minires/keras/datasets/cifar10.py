"""``keras.datasets.cifar10.load_data()``: the official CIFAR-10, as Keras returns it.

((x_train uint8 (50000, 32, 32, 3), y_train uint8 (50000, 1)), (x_test, y_test)).
Arguments (a cache path, whether to download) go to ``minires.data.cifar10.load_data``.
"""


def load_data(*args, **kwargs):
    # Imported here: the data package (downloads, decoding) is only needed when data is loaded.
    from ...data.cifar10 import load_data as _load_data

    return _load_data(*args, **kwargs)
