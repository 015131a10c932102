"""Process-level machinery the generation's steps share: compiled loops (numba) and the garbage-collector freeze."""
