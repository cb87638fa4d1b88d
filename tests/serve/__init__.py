"""Tests of pix2pix.serve (a package, so its conftest does not shadow tests/conftest.py)."""
