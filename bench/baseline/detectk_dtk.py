"""DetectK's `dtk` command with detectk_compat's patches applied.

Usage: python detectk_dtk.py run CONFIG -t "YYYY-MM-DD HH:MM:SS"
(what bench/run.sh times with hyperfine as DetectK's whole `dtk run`).
"""

import detectk_compat  # noqa: F401  (must come before DetectK runs)
from detectk.cli.main import main

if __name__ == "__main__":
    main()
