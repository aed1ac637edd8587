"""Finding and loading libdtk with ctypes, and the prototypes of its C API
(core/capi.h). Nothing here re-implements the engine: every call goes to C.

The library is looked up, in order:
  1. $DTK_LIBRARY: a path to libdtk.so (libdtk-fleet.so is expected beside it);
  2. a copy bundled into this package at build time (detectk/_libs/);
  3. the system path: ctypes.util.find_library("dtk"), then "libdtk.so.0".

libdtk-fleet (core/fleet/capi.h, for detectk.fleet) is loaded after libdtk,
on first use, from: $DTK_FLEET_LIBRARY; beside the libdtk that was loaded
(also its fleet/ subdirectory, the build tree's layout); the bundled copy;
the system path.
"""

import ctypes
import ctypes.util
import os
import threading

from .errors import ConfigError, ConfigFileNotFoundError, DetectKError

_ERRSTR_SIZE = 4096
_lock = threading.Lock()
_lib = None
_lib_path = None
_fleet = None
_fleet_path = None


def _candidates():
    """(description, loadable name or path) in lookup order."""
    out = []
    env = os.environ.get("DTK_LIBRARY")
    if env:
        out.append(("DTK_LIBRARY=%s" % env, env))
    return out + _installed_candidates("dtk")


def _installed_candidates(stem):
    """The bundled copy, then the system library, of lib<stem>.so."""
    out = []
    bundled = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_libs")
    for name in ("lib%s.so" % stem, "lib%s.so.0" % stem):
        p = os.path.join(bundled, name)
        out.append(("bundled copy %s" % p, p))
    found = ctypes.util.find_library(stem)
    if found:
        out.append(("system library %s (ctypes.util.find_library)" % found, found))
    out.append(("system library lib%s.so.0" % stem, "lib%s.so.0" % stem))
    return out


def _open_first(candidates, symbol, too_old, prototype, failure):
    """(library, name): the first of candidates ((description, name or path)
    pairs) that loads and has symbol, given its prototypes by prototype; else
    ImportError, failure then why each candidate failed."""
    tried = []
    for what, name in candidates:
        if os.sep in name and not os.path.exists(name):
            tried.append("%s: no such file" % what)
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError as e:
            tried.append("%s: %s" % (what, e))
            continue
        if not hasattr(lib, symbol):
            tried.append("%s: loaded, but it lacks %s (%s)" % (what, symbol, too_old))
            continue
        prototype(lib)
        return lib, name
    raise ImportError(failure + " Tried:\n  " + "\n  ".join(tried))


def _prototype(lib):
    lib.dtk_check_run_json.restype = ctypes.c_void_p
    lib.dtk_check_run_json.argtypes = [ctypes.c_char_p, ctypes.c_int64, ctypes.c_int,
                                       ctypes.c_char_p, ctypes.c_size_t]
    lib.dtk_config_info_json.restype = ctypes.c_void_p
    lib.dtk_config_info_json.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                                         ctypes.c_size_t]
    lib.dtk_free.restype = None
    lib.dtk_free.argtypes = [ctypes.c_void_p]


def load():
    """The loaded libdtk (once per process); ImportError naming every place tried."""
    global _lib, _lib_path
    with _lock:
        if _lib is None:
            _lib, _lib_path = _open_first(
                _candidates(), "dtk_check_run_json", "too old a libdtk", _prototype,
                "detectk: cannot load libdtk; set DTK_LIBRARY to the path of libdtk.so.")
        return _lib


def _fleet_candidates():
    out = []
    env = os.environ.get("DTK_FLEET_LIBRARY")
    if env:
        out.append(("DTK_FLEET_LIBRARY=%s" % env, env))
    if _lib_path and os.sep in _lib_path:
        here = os.path.dirname(os.path.abspath(_lib_path))
        for sub in ("", "fleet"):
            for name in ("libdtk-fleet.so", "libdtk-fleet.so.0"):
                p = os.path.join(here, sub, name)
                out.append(("beside libdtk: %s" % p, p))
    return out + _installed_candidates("dtk-fleet")


def _prototype_fleet(lib):
    lib.dtk_fleet_dispatch_json.restype = ctypes.c_void_p
    lib.dtk_fleet_dispatch_json.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p),
                                            ctypes.c_char_p, ctypes.c_size_t]
    lib.dtk_fleet_select_json.restype = ctypes.c_void_p
    lib.dtk_fleet_select_json.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.dtk_fleet_results_start.restype = ctypes.c_int
    lib.dtk_fleet_results_start.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.dtk_fleet_results_next_json.restype = ctypes.c_void_p
    lib.dtk_fleet_results_next_json.argtypes = [ctypes.c_void_p, ctypes.c_int64,
                                                ctypes.c_char_p, ctypes.c_size_t]
    lib.dtk_fleet_await_json.restype = ctypes.c_void_p
    lib.dtk_fleet_await_json.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_char_p,
                                         ctypes.c_size_t]
    lib.dtk_fleet_handle_free.restype = None
    lib.dtk_fleet_handle_free.argtypes = [ctypes.POINTER(ctypes.c_void_p)]


def load_fleet():
    """The loaded libdtk-fleet (after libdtk, once per process); ImportError
    naming every place tried."""
    global _fleet, _fleet_path
    load()
    with _lock:
        if _fleet is None:
            _fleet, _fleet_path = _open_first(
                _fleet_candidates(), "dtk_fleet_dispatch_json", "too old", _prototype_fleet,
                "detectk.fleet: cannot load libdtk-fleet; set DTK_FLEET_LIBRARY to the path of "
                "libdtk-fleet.so.")
        return _fleet


def fleet_library_path():
    """The name or path libdtk-fleet was loaded from."""
    load_fleet()
    return _fleet_path


def take_string(ptr):
    """The text of a string returned by libdtk or libdtk-fleet, freed."""
    lib = load()
    try:
        return ctypes.string_at(ptr).decode("utf-8")
    finally:
        lib.dtk_free(ptr)


def library_path():
    """The name or path libdtk was loaded from."""
    load()
    return _lib_path


def _path_arg(path):
    p = os.fsencode(os.fspath(path))
    if b"\0" in p:
        raise ValueError("embedded NUL in path %r" % (path,))
    return p


def _take(lib, ptr, err, path):
    if not ptr:
        msg = err.value.decode("utf-8", "replace") or "unknown error"
        if msg == "out of memory":
            raise MemoryError("detectk: " + msg)
        if not os.path.exists(os.fspath(path)):
            raise ConfigFileNotFoundError(msg, os.fspath(path))
        raise ConfigError(msg, os.fspath(path))
    try:
        return ctypes.string_at(ptr).decode("utf-8")
    finally:
        lib.dtk_free(ptr)


def check_run_json(path, t=None):
    """The check result JSON text of running the config at path at t (UTC
    seconds, int) or now; ConfigError when the config does not load."""
    lib = load()
    err = ctypes.create_string_buffer(_ERRSTR_SIZE)
    ptr = lib.dtk_check_run_json(_path_arg(path), int(t or 0), 0 if t is None else 1, err,
                                 _ERRSTR_SIZE)
    return _take(lib, ptr, err, path)


def config_info_json(path, strict=True):
    """The config summary JSON text of capi.h's dtk_config_info_json."""
    lib = load()
    err = ctypes.create_string_buffer(_ERRSTR_SIZE)
    ptr = lib.dtk_config_info_json(_path_arg(path), 1 if strict else 0, err, _ERRSTR_SIZE)
    return _take(lib, ptr, err, path)


__all__ = ["load", "load_fleet", "library_path", "fleet_library_path", "take_string",
           "check_run_json", "config_info_json", "DetectKError"]
