// Upload page, enhanced: several files, drag and drop, one presigned POST per file (asked of Django with the
// file's name, size and type), a real progress bar per file (XMLHttpRequest upload.onprogress), then polling
// the owner's status endpoint until the image is ready, waiting for review or failed. At most data-parallel
// files are under way at once (the person's quota of open upload forms caps it); the rest wait their turn.
// Without this script the page's form asks Django for an upload form (POST), and that form posts the file to S3.
(function () {
  "use strict";

  const form = document.getElementById("upload-form");
  const list = document.getElementById("upload-list");
  if (!form || !list || !window.FormData || !window.XMLHttpRequest) return;

  const input = form.querySelector('input[type="file"]');
  const policyUrl = form.dataset.policyUrl;
  const maxBytes = Number(form.dataset.maxBytes);
  const maxSize = form.dataset.maxSize;
  const accepted = new Set(form.dataset.accept.split(","));
  const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
  const POLL_MS = 1500;
  const POLL_LIMIT = 120; // three minutes, then say "still processing"
  const PREVIEW_PX = 64; // .upload__thumb in site.css
  const parallel = Math.max(1, Number(form.dataset.parallel) || 1);
  const waiting = []; // uploads not started yet, in the order the files were chosen
  let running = 0;

  document.documentElement.classList.add("js");
  input.multiple = true;
  input.required = false;
  input.removeAttribute("name"); // the file travels in our own FormData, never in this form

  form.addEventListener("submit", (event) => event.preventDefault());
  input.addEventListener("change", () => {
    queue(input.files);
    input.value = "";
  });
  ["dragenter", "dragover"].forEach((type) =>
    form.addEventListener(type, (event) => {
      event.preventDefault();
      form.classList.add("dropzone--over");
    })
  );
  ["dragleave", "drop"].forEach((type) =>
    form.addEventListener(type, (event) => {
      event.preventDefault();
      form.classList.remove("dropzone--over");
    })
  );
  form.addEventListener("drop", (event) => queue(event.dataTransfer.files));

  function queue(files) {
    // Rows in the order the files were chosen, the newest batch on top.
    const batch = Array.from(files || []).map((file) => [file, addRow(file)]);
    list.prepend(...batch.map(([, ui]) => ui.row));
    batch.forEach(([file, ui]) => waiting.push(() => upload(file, ui)));
    startWaiting();
  }

  // An upload holds its place until Django has been told it arrived (or it failed): that is when the server
  // stops counting its form as open.
  function startWaiting() {
    while (running < parallel && waiting.length) {
      const start = waiting.shift();
      running += 1;
      start().finally(() => {
        running -= 1;
        startWaiting();
      });
    }
  }

  function addRow(file) {
    const row = document.createElement("li");
    row.className = "upload";
    row.innerHTML =
      '<div class="upload__thumb" aria-hidden="true"></div>' +
      '<div class="upload__body"><p class="upload__name"></p>' +
      '<progress class="upload__bar" max="100" value="0"></progress>' +
      '<p class="upload__status muted">Waiting…</p></div>';
    row.querySelector(".upload__name").textContent = file.name;
    return {
      row,
      bar: row.querySelector("progress"),
      say(text, state) {
        const status = row.querySelector(".upload__status");
        status.textContent = text;
        status.className = "upload__status" + (state ? " status--" + state : " muted");
        row.dataset.state = state || "";
      },
    };
  }

  async function upload(file, ui) {
    // The server checks these again; checking here saves a round trip and gives the same message sooner.
    if (file.type && !accepted.has(file.type)) {
      ui.say(`${file.type} is not an accepted image type. Upload JPEG, PNG, WebP, AVIF, GIF, TIFF or HEIC/HEIF files.`, "failed");
      return;
    }
    if (file.size > maxBytes) {
      ui.say(`This file is ${megabytes(file.size)}; the largest accepted upload is ${maxSize}.`, "failed");
      return;
    }
    ui.say("Preparing…");
    let ticket;
    try {
      ticket = await askForPolicy(file);
    } catch (error) {
      ui.say(error.message, "failed");
      return;
    }
    ui.say("Uploading…");
    try {
      await send(file, ticket, ui.bar);
    } catch (error) {
      ui.say(error.message, "failed");
      return;
    }
    ui.bar.value = 100;
    ui.say("Received, processing…", "processing");
    await fetch(ticket.done_url, { headers: { Accept: "application/json" }, credentials: "same-origin" }).catch(() => {});
    poll(ticket, ui, 0);
  }

  async function askForPolicy(file) {
    // Browsers leave the type empty for formats they do not know (HEIC on most desktops): ask by extension.
    const type = file.type || guessType(file.name);
    let response;
    try {
      response = await fetch(policyUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken, Accept: "application/json" },
        body: JSON.stringify({ name: file.name, size: file.size, type }),
      });
    } catch (error) {
      throw new Error("Could not reach the site. Check your connection and try again.");
    }
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      if (response.status === 401 || response.status === 403) throw new Error("Your session has ended: log in again, then retry.");
      // 400 (type, size), 413, 429 (over the upload quota: which limit, and when to try again), 503: a sentence.
      throw new Error(answer.error || `The site refused this file (HTTP ${response.status}).`);
    }
    return answer;
  }

  function send(file, ticket, bar) {
    return new Promise((resolve, reject) => {
      const body = new FormData();
      Object.entries(ticket.fields).forEach(([name, value]) => body.append(name, value));
      body.append("file", file); // S3 ignores every field after the file: it goes last
      const xhr = new XMLHttpRequest();
      xhr.open("POST", ticket.url);
      xhr.upload.onprogress = (event) => {
        if (event.lengthComputable) bar.value = Math.round((event.loaded / event.total) * 100);
      };
      xhr.onload = () => (xhr.status >= 200 && xhr.status < 300 ? resolve() : reject(new Error(s3Message(xhr))));
      xhr.onerror = () => reject(new Error("The upload was interrupted (network error). Try again."));
      xhr.send(body);
    });
  }

  // S3 answers a refused POST with XML: <Error><Code>..</Code><Message>..</Message></Error>.
  function s3Message(xhr) {
    let code = "";
    let message = "";
    try {
      const xml = new DOMParser().parseFromString(xhr.responseText, "application/xml");
      code = (xml.querySelector("Code") || {}).textContent || "";
      message = (xml.querySelector("Message") || {}).textContent || "";
    } catch (error) {
      /* not XML: fall through to the status */
    }
    if (code === "EntityTooLarge") return `This file is larger than the ${maxSize} limit.`;
    if (code === "EntityTooSmall") return "This file is empty.";
    if (/expired/i.test(message)) return "The upload permission expired before the file was sent. Try again.";
    if (code === "AccessDenied") return `Storage refused the upload: ${message || "access denied"}.`;
    if (code) return `Storage refused the upload (${code}${message ? ": " + message : ""}).`;
    return `Storage refused the upload (HTTP ${xhr.status}).`;
  }

  // The owner's own status endpoint (/my/<id>/status): it answers for images the public API does not show yet
  // (waiting for review, rejected), and says whether the photo is already in the gallery.
  function poll(ticket, ui, attempt) {
    if (attempt >= POLL_LIMIT) {
      ui.say("Still processing. My uploads shows it when it is ready.", "processing");
      return;
    }
    fetch(ticket.status_url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then((response) => (response.ok ? response.json() : null))
      .then((upload) => {
        if (upload && upload.status !== "uploading" && upload.status !== "processing") return finished(ui, upload);
        setTimeout(() => poll(ticket, ui, attempt + 1), POLL_MS);
      })
      .catch(() => setTimeout(() => poll(ticket, ui, attempt + 1), POLL_MS));
  }

  function finished(ui, upload) {
    const status = ui.row.querySelector(".upload__status");
    if (upload.state === "ready") {
      ui.say("Ready. ", "ready");
    } else if (upload.status === "failed") {
      ui.say(upload.failure_reason || `${upload.label}.`, "failed"); // the reason, word for word as the admin shows it
    } else {
      // Waiting for review, needs alt text, rejected (with staff's reason), hidden: in words, with what to do.
      ui.say(`${upload.label}. ${upload.reason || ""}`.trim(), upload.state);
    }
    const original = upload.duplicate_of || upload.near_duplicate_of;
    if (original) {
      const note = document.createElement("span");
      note.className = "upload__duplicate";
      note.append(upload.duplicate_of ? " Already in the gallery as " : " Looks like ", link(original.url, original.title), ".");
      status.append(note);
    }
    if (upload.state === "ready") status.append(" ", link(upload.page_url, "View the photo"));
    else if (upload.status !== "failed") status.append(" ", link(upload.my_url, "My uploads"));
    if (upload.thumbnail) showThumbnail(ui, upload.thumbnail);
  }

  function link(href, text) {
    const anchor = document.createElement("a");
    anchor.href = href;
    anchor.textContent = text;
    return anchor;
  }

  // The 4:3 tile (CDN URLs while published, else a short-lived URL only its owner gets) in the square box, which
  // crops it (object-fit: cover): 4/3 of the box wide, and `sizes` says so.
  function showThumbnail(ui, thumbnail) {
    const thumb = ui.row.querySelector(".upload__thumb");
    const box = thumb.getBoundingClientRect().width || PREVIEW_PX;
    const img = new Image();
    if (thumbnail.srcset) {
      img.srcset = thumbnail.srcset;
      img.sizes = `${Math.ceil((box * 4) / 3)}px`;
    }
    img.src = thumbnail.src;
    img.alt = ""; // the row names the file next to it
    thumb.replaceChildren(img);
    if (thumbnail.color) thumb.style.background = thumbnail.color;
  }

  function guessType(name) {
    const ext = (name.split(".").pop() || "").toLowerCase();
    const types = { jpg: "image/jpeg", jpeg: "image/jpeg", png: "image/png", webp: "image/webp", avif: "image/avif",
      gif: "image/gif", tif: "image/tiff", tiff: "image/tiff", heic: "image/heic", heif: "image/heif" };
    return types[ext] || "";
  }

  function megabytes(size) {
    return `${(size / (1024 * 1024)).toFixed(1)} MB`;
  }
})();
