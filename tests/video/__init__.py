"""Tests of pix2pix.video (a package, so its conftest does not shadow tests/conftest.py)."""
