"""Generators of small synthetic datasets written in real datasets' on-disk layouts."""
