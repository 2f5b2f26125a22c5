"""What a page's images cost and how sharp they are, measured in a real Chromium (Playwright).

For every displayed image: the file the browser chose (``img.currentSrc`` and its natural size), the CSS box it
fills and the device pixel ratio. ``ratio`` is the chosen file's pixels over the device pixels they are drawn
on: for a cover-cropped image along the picture's narrower side (the side that fills its box), for a
contained one along the side that limits it, else along the width. Used by ``make audit``/``make pixels``
(local_stack/audit.py) and by the browser test (tests/e2e/test_pixels.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from playwright.sync_api import Browser, Page

# The two screens of issue 12's targets.
DEVICES: Final = {
    "phone": {
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 3,
        "is_mobile": True,
        "has_touch": True,
    },
    "desktop": {"viewport": {"width": 1440, "height": 900}, "device_scale_factor": 2},
}
MAX_RATIO: Final = 1.5
# Layout boxes are fractional CSS pixels: a file 0.5% narrower than its box is the same pixels.
NARROWER_TOLERANCE: Final = 0.995

# naturalWidth of an <img> with a srcset is the file's width divided by the density the browser gave it, so
# each chosen file is decoded again, without srcset, for its real pixel size.
_IMAGES_JS: Final = """async () => {
  const shown = [...document.images].filter((img) => img.getBoundingClientRect().width > 0);
  return Promise.all(shown.map(async (img) => {
    const box = img.getBoundingClientRect();
    const lists = [];
    if (img.parentElement && img.parentElement.tagName === "PICTURE") {
      for (const source of img.parentElement.querySelectorAll("source")) lists.push(source.srcset);
    }
    lists.push(img.srcset || "");
    const parsed = lists.map((list) => list.split(",").map((c) => c.trim()).filter(Boolean).map((c) => {
      const [url, descriptor] = c.split(/\\s+/);
      return { url: new URL(url, location.href).href, width: parseInt(descriptor, 10) || 0 };
    }));
    const used = parsed.find((list) => list.some((c) => c.url === img.currentSrc)) || [];
    const file = new Image();
    file.src = img.currentSrc;
    await file.decode();
    return {
      src: img.currentSrc, alt: img.alt, naturalWidth: file.naturalWidth, naturalHeight: file.naturalHeight,
      boxWidth: box.width, boxHeight: box.height, fit: getComputedStyle(img).objectFit, dpr: devicePixelRatio,
      widest: Math.max(0, ...used.map((c) => c.width)),
    };
  }));
}"""
_ALL_LOADED_JS: Final = "() => [...document.images].every((img) => img.complete && img.naturalWidth > 0)"
_SCROLL_JS: Final = """async () => {
  for (let y = 0; y < document.documentElement.scrollHeight; y += window.innerHeight / 2) {
    window.scrollTo(0, y);
    await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 50)));
  }
  window.scrollTo(0, document.documentElement.scrollHeight);
}"""


@dataclass(frozen=True)
class ImageOnScreen:
    src: str
    alt: str
    natural: tuple[int, int]
    box: tuple[float, float]
    fit: str
    dpr: float
    widest_candidate: int

    @property
    def device_pixels(self) -> tuple[float, float]:
        return self.box[0] * self.dpr, self.box[1] * self.dpr

    @property
    def ratio(self) -> float:
        """The chosen file's pixels per device pixel it fills (1.0 is exact; above is wasted, below is soft)."""
        along_width = self.natural[0] / self.device_pixels[0]
        along_height = self.natural[1] / self.device_pixels[1]
        if self.fit == "cover":
            return min(along_width, along_height)
        if self.fit == "contain":
            return max(along_width, along_height)
        return along_width

    @property
    def bigger_rung_exists(self) -> bool:
        return self.widest_candidate > self.natural[0]

    @property
    def too_soft(self) -> bool:
        """Narrower than the pixels it fills although the srcset had a bigger file."""
        return self.ratio < NARROWER_TOLERANCE and self.bigger_rung_exists

    @property
    def too_big(self) -> bool:
        return self.ratio > MAX_RATIO

    def describe(self) -> str:
        name = self.src.rsplit("/", 2)[-1]
        return (
            f"{name} ({self.alt!r}): {self.natural[0]}x{self.natural[1]} file in a {self.box[0]:.1f}x{self.box[1]:.1f}"
            f" CSS px {self.fit} box at {self.dpr:g}x: ratio {self.ratio:.2f}"
        )


@dataclass(frozen=True)
class PageMeasure:
    url: str
    images: list[ImageOnScreen]
    image_bytes: int
    image_requests: int


def measure(page: Page, url: str) -> PageMeasure:
    """Load ``url``, scroll to the bottom so every lazy image loads, and measure every displayed image."""
    responses: list[Any] = []
    listener = lambda response: responses.append(response) if response.request.resource_type == "image" else None  # noqa: E731
    page.on("response", listener)
    try:
        page.goto(url, wait_until="load")
        page.evaluate(_SCROLL_JS)
        page.wait_for_function(_ALL_LOADED_JS)
        page.wait_for_load_state("networkidle")
        found = page.evaluate(_IMAGES_JS)
        image_bytes = sum(len(response.body()) for response in responses if response.ok)
    finally:
        page.remove_listener("response", listener)
    images = [
        ImageOnScreen(
            src=item["src"],
            alt=item["alt"],
            natural=(item["naturalWidth"], item["naturalHeight"]),
            box=(item["boxWidth"], item["boxHeight"]),
            fit=item["fit"],
            dpr=item["dpr"],
            widest_candidate=item["widest"],
        )
        for item in found
    ]
    return PageMeasure(url, images, image_bytes, len(responses))


def measure_on(browser: Browser, device: str, base_url: str, paths: list[str]) -> dict[str, PageMeasure]:
    """Each of ``paths`` in a fresh context (empty cache) as ``device`` sees it."""
    results = {}
    for path in paths:
        context = browser.new_context(base_url=base_url, **DEVICES[device])
        try:
            results[path] = measure(context.new_page(), path)
        finally:
            context.close()
    return results
