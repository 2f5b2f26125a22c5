// My uploads and the "received" page: follow each upload still under way ([data-status-url], the owner's own
// status endpoint, which also answers for unpublished images) and say what became of it in words: published,
// waiting for review, failed and why, already in the gallery as ... . Without this script the page is already
// right as of its loading; a reload shows the rest.
(function () {
  "use strict";

  const POLL_MS = 1500;
  const POLL_LIMIT = 120; // three minutes; the page says the rest on a reload
  const UNDER_WAY = new Set(["uploading", "processing"]);

  function poll(element, attempt) {
    if (attempt >= POLL_LIMIT) return;
    fetch(element.dataset.statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then((response) => (response.ok ? response.json() : null))
      .then((upload) => {
        if (upload && !UNDER_WAY.has(upload.state)) return show(element, upload);
        setTimeout(() => poll(element, attempt + 1), POLL_MS);
      })
      .catch(() => setTimeout(() => poll(element, attempt + 1), POLL_MS));
  }

  // The same words and classes the server renders (gallery/my.html), so a reload changes nothing.
  function show(element, upload) {
    element.className = element.className.replace(/\bmine__item--[\w-]+/g, "").trim();
    if (element.classList.contains("mine__item")) element.classList.add(`mine__item--${upload.state}`);
    const badge = element.querySelector(".badge");
    if (badge) {
      badge.className = `badge badge--${upload.state}`;
      badge.textContent = upload.label;
    }
    const reason = element.querySelector(".js-reason");
    if (reason) reason.textContent = upload.reason || "";
    const original = upload.duplicate_of || upload.near_duplicate_of;
    const note = element.querySelector(".js-duplicate");
    if (note && original) {
      const link = document.createElement("a");
      link.href = original.url;
      link.textContent = original.title;
      note.replaceChildren(upload.duplicate_of ? "Already in the gallery as " : "Looks like ", link, ".");
      note.hidden = false;
    }
    const page = element.querySelector(".js-page");
    if (page && upload.page_url) {
      page.href = upload.page_url;
      page.hidden = false;
    }
  }

  document.querySelectorAll("[data-status-url]").forEach((element) => poll(element, 0));
})();
