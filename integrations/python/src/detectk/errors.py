"""The exceptions of the detectk package."""


class DetectKError(Exception):
    """Base class of every detectk error."""


class ConfigError(DetectKError):
    """A metric config failed to load. str(e) and e.message are the engine's
    message ("PATH:LINE:COL: key.path: message"); e.path is the file."""

    def __init__(self, message, path=None):
        super().__init__(message)
        self.message = message
        self.path = path

    def __str__(self):
        return self.message


class ConfigFileNotFoundError(ConfigError, FileNotFoundError):
    """The config file does not exist (also a FileNotFoundError)."""

    def __init__(self, message, path=None):
        ConfigError.__init__(self, message, path)
        self.filename = path
        self.errno = 2
        self.strerror = message

    def __str__(self):
        return self.message


class DispatchError(DetectKError):
    """Publishing check requests failed before anything was published (no
    broker reachable, a missing topic, bad options). str(e) is the engine's
    message; e.invalid lists the configs that were invalid anyway
    ([{"path", "error"}])."""

    def __init__(self, message, invalid=None):
        super().__init__(message)
        self.message = message
        self.invalid = list(invalid or [])

    def __str__(self):
        return self.message


class ResultsTimeout(DetectKError, TimeoutError):
    """wait_results gave up before every request had a result. e.missing
    lists the requests still without one ([{"metric", "request_id", "path"}]),
    e.results the results that did come (dicts), e.dispatch_id the dispatch."""

    def __init__(self, message, missing, results, dispatch_id):
        super().__init__(message)
        self.message = message
        self.missing = list(missing)
        self.results = list(results)
        self.dispatch_id = dispatch_id

    def __str__(self):
        return self.message
