"""Readers (one per on-disk format) and the dataset registry. Torch-free; nothing here downloads or tokenizes."""
