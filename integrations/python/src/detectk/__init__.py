"""DetectK in C, from Python: bindings over libdtk (ctypes).

    from detectk.check import MetricCheck
    from detectk.config import ConfigLoader
    from detectk.fleet import dispatch, wait_results

libdtk is found through $DTK_LIBRARY, then a copy bundled by the package
build, then the system library path; libdtk-fleet (for detectk.fleet) through
$DTK_FLEET_LIBRARY, then beside libdtk (see detectk._lib)."""

from .errors import (ConfigError, ConfigFileNotFoundError, DetectKError, DispatchError,
                     ResultsTimeout)

__version__ = "0.1.0"


def library_path():
    """Where libdtk was loaded from (loads it on first use)."""
    from . import _lib
    return _lib.library_path()


__all__ = ["ConfigError", "ConfigFileNotFoundError", "DetectKError", "DispatchError",
           "ResultsTimeout", "library_path", "__version__"]
