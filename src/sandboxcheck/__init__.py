"""sandboxcheck: prove, from evidence seen outside, whether an agent sandbox holds."""

__version__ = "0.1.0"
