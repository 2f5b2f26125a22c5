"""The one thread pool imaging shares: encodes and the stripes of large resizes (Pillow releases the GIL in both)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

# One thread per core (two at least, so one encode overlaps the next resize; four at most): the jobs are CPU-bound
# and release the GIL, and more threads than cores would only hold more pictures and encoder buffers at once.
STRIPES = max(1, min(4, os.cpu_count() or 1))
POOL = ThreadPoolExecutor(max_workers=max(2, STRIPES), thread_name_prefix="imaging")
