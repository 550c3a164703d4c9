"""The starter-contracts version. Written by `starter-cli release bump`; never edit it by hand."""

__version__ = "0.1.0"
