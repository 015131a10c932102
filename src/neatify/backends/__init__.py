"""Evaluating a population elsewhere than the calling thread: a local process pool (``processes``) and Ray."""
