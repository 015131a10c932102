"""Indirect encodings: CPPNs queried over substrates (HyperNEAT, ES-HyperNEAT), batched over the population."""
