"""The one thread pool imaging shares: encodes and the stripes of large resizes (Pillow releases the GIL in both)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

# Two formats for each of a dozen rungs, and stripes; more threads than cores only hold more buffers at once.
POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="imaging")
STRIPES = max(1, min(4, os.cpu_count() or 1))
