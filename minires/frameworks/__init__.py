"""Adapters to other frameworks (PyTorch today), for comparisons: benchmarks, verification, tests.

Each module here imports its framework at module level, so nothing in this package is
imported by ``import minires``; import the module you need (``minires.frameworks.torch_resnet``)
once the framework is installed (``minires[verify]`` for PyTorch). Every layout and padding
mapping between minires and a framework belongs in that framework's module here.
"""
