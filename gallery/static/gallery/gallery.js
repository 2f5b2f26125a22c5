// Gallery, detail and "received" pages: BlurHash placeholders behind loading images, and elements marked
// data-poll that follow an image through processing by polling the read API (GET /api/images/<id>).
(function () {
  "use strict";

  const POLL_MS = 2000;
  const POLL_LIMIT = 90; // three minutes

  // -- BlurHash (woltapp/blurhash, decode only): a 32x32 canvas painted behind the image while it loads.
  const BASE83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";
  const decode83 = (text) => [...text].reduce((value, char) => value * 83 + BASE83.indexOf(char), 0);
  const toLinear = (v) => ((v /= 255) <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4));
  const toSrgb = (v) => {
    const c = Math.max(0, Math.min(1, v));
    return Math.round((c <= 0.0031308 ? c * 12.92 : 1.055 * Math.pow(c, 1 / 2.4) - 0.055) * 255);
  };
  const signPow = (v, e) => Math.sign(v) * Math.pow(Math.abs(v), e);

  function blurhashPixels(hash, width, height) {
    const size = decode83(hash[0]);
    const nx = (size % 9) + 1;
    const ny = Math.floor(size / 9) + 1;
    if (hash.length !== 4 + 2 * nx * ny) return null;
    const maxAc = (decode83(hash[1]) + 1) / 166;
    const colors = [];
    const dc = decode83(hash.slice(2, 6));
    colors.push([toLinear(dc >> 16), toLinear((dc >> 8) & 255), toLinear(dc & 255)]);
    for (let i = 1; i < nx * ny; i++) {
      const v = decode83(hash.slice(4 + i * 2, 6 + i * 2));
      colors.push([Math.floor(v / 361), Math.floor(v / 19) % 19, v % 19].map((q) => signPow((q - 9) / 9, 2) * maxAc));
    }
    const pixels = new Uint8ClampedArray(width * height * 4);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        let r = 0, g = 0, b = 0;
        for (let j = 0; j < ny; j++) {
          for (let i = 0; i < nx; i++) {
            const basis = Math.cos((Math.PI * x * i) / width) * Math.cos((Math.PI * y * j) / height);
            const c = colors[i + j * nx];
            r += c[0] * basis; g += c[1] * basis; b += c[2] * basis;
          }
        }
        const p = 4 * (x + y * width);
        pixels[p] = toSrgb(r); pixels[p + 1] = toSrgb(g); pixels[p + 2] = toSrgb(b); pixels[p + 3] = 255;
      }
    }
    return pixels;
  }

  function paintBlurhash(picture) {
    const img = picture.querySelector("img");
    if (!img || img.complete) return; // already here: no placeholder needed
    try {
      const pixels = blurhashPixels(picture.dataset.blurhash, 32, 32);
      if (!pixels) return;
      const canvas = document.createElement("canvas");
      canvas.width = canvas.height = 32;
      canvas.getContext("2d").putImageData(new ImageData(pixels, 32, 32), 0, 0);
      picture.style.backgroundImage = `url(${canvas.toDataURL()})`;
      img.addEventListener("load", () => picture.classList.add("pic--loaded"), { once: true });
    } catch (error) {
      /* the dominant colour stays as the placeholder */
    }
  }

  // One picture per task, when the main thread is idle: 24 decodes in one go are a long task on a slow phone,
  // and an image that arrived meanwhile needs no placeholder at all.
  const later = window.requestIdleCallback || ((callback) => setTimeout(callback, 1));
  const waiting = [...document.querySelectorAll("picture[data-blurhash]")];
  const paintNext = () => {
    if (!waiting.length) return;
    paintBlurhash(waiting.shift());
    later(paintNext);
  };
  later(paintNext);

  // -- polling ---------------------------------------------------------------------------------------
  function poll(element, attempt) {
    if (attempt >= POLL_LIMIT) return;
    fetch(element.dataset.poll, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then((response) => (response.ok ? response.json() : null))
      .then((doc) => {
        if (doc && (doc.status === "ready" || doc.status === "failed")) return finished(element, doc);
        setTimeout(() => poll(element, attempt + 1), POLL_MS);
      })
      .catch(() => setTimeout(() => poll(element, attempt + 1), POLL_MS));
  }

  function finished(element, doc) {
    if (element.dataset.reload) return window.location.reload();
    if (element.classList.contains("tile")) return finishTile(element, doc);
    const status = element.querySelector(".status");
    if (status) {
      status.textContent = doc.status === "ready" ? "Ready." : `Failed: ${doc.failure_reason || "unknown reason"}`;
      status.classList.add(`status--${doc.status}`);
    }
  }

  function finishTile(tile, doc) {
    const frame = tile.querySelector(".tile__frame");
    tile.classList.remove("tile--processing");
    if (doc.status === "ready") {
      const link = document.createElement("a");
      link.className = "tile__frame";
      link.href = tile.dataset.page;
      link.append(drawTile(doc, tile.closest("[data-sizes]")));
      frame.replaceWith(link);
      const caption = document.createElement("div");
      caption.className = "tile__caption";
      caption.innerHTML = '<span class="tile__title">Just added</span>';
      tile.append(caption);
    } else {
      tile.classList.add("tile--failed");
      frame.innerHTML =
        '<span class="tile__icon" aria-hidden="true">!</span><span class="status status--failed"></span>' +
        '<button type="button" class="linkish small">Dismiss</button>';
      frame.querySelector(".status").textContent = `Upload failed: ${doc.failure_reason || "unknown reason"}`;
      frame.querySelector("button").addEventListener("click", () => dismiss(tile));
    }
  }

  // A tile as the server draws it (gallery/_picture.html): the 4:3 crops, WebP where it is smaller, the grid's
  // own `sizes`, the fallback JPEG's width and height, and a name for the link it fills.
  function drawTile(doc, grid) {
    const picture = document.createElement("picture");
    picture.className = "pic";
    if (doc.placeholder && doc.placeholder.color) picture.style.setProperty("--placeholder", doc.placeholder.color);
    const sizes = (grid && grid.dataset.sizes) || "50vw";
    const srcset = doc.thumbnail_srcset || {};
    for (const [format, type] of [["avif", "image/avif"], ["webp", "image/webp"]]) {
      if (!srcset[format]) continue; // absent when that format is never the smaller file
      const source = document.createElement("source");
      source.type = type;
      source.srcset = srcset[format];
      source.sizes = sizes;
      picture.append(source);
    }
    const fallback = (doc.sources || []).find((s) => s.url === doc.thumbnail) || {};
    const img = new Image(fallback.width, fallback.height);
    if (srcset.jpeg) {
      img.srcset = srcset.jpeg;
      img.sizes = sizes;
    }
    img.src = doc.thumbnail;
    img.alt = pictureLabel(doc);
    picture.append(img);
    return picture;
  }

  // As gallery.selectors.picture_label: alt text, else title, else "Photo uploaded 2 Dec 2026".
  function pictureLabel(doc) {
    const named = (doc.alt_text || "").trim() || (doc.title || "").trim();
    if (named) return named;
    const uploaded = new Date(doc.created_at);
    if (isNaN(uploaded)) return "Photo";
    const month = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(" ")[uploaded.getUTCMonth()];
    return `Photo uploaded ${uploaded.getUTCDate()} ${month} ${uploaded.getUTCFullYear()}`;
  }

  function dismiss(tile) {
    const token = (document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/) || [])[1] || "";
    fetch(tile.dataset.dismiss, { method: "POST", headers: { "X-CSRFToken": token, Accept: "application/json" }, credentials: "same-origin" })
      .finally(() => tile.remove());
  }

  document.querySelectorAll("[data-poll]").forEach((element) => poll(element, 0));
})();
