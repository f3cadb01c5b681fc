"""Exceptions raised for bad input, each naming the file and what is wrong with it."""


class PVL8DAError(Exception):
    """Base class of the errors this package raises on purpose."""


class InputError(PVL8DAError, ValueError):
    """An input file or parameter is missing, malformed or inconsistent."""
