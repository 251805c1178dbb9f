"""Device physics, vectorised with NumPy across all devices of a kind.

Each bank holds the state of every device of one kind in arrays and advances them together by
one tick, because a Python object per device would make a 500-device day take minutes.
"""
