"""Read the probe's own environment; values leave only as digests."""
import os
from _probe import digest, emit

emit("read_env", "read own environment", True,
     entries={k: digest(v) for k, v in sorted(os.environ.items())})
