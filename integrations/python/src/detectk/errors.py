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
