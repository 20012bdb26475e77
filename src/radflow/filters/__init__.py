"""Convolutional filters (IBSI 2 definitions): mean, LoG, Laws, wavelets."""
