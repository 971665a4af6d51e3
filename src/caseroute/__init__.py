"""caseroute: explainable, rules-based routing decisions for healthcare enquiries."""

from importlib import metadata

try:
    __version__ = metadata.version("caseroute")
except metadata.PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
