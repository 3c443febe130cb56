"""Shipped weight files, installed as the package data ``aecodec.zoo``."""
