// Mural gallery: Copy prompt, "only mine" applied at once, and times in the reader's own zone.
// Served from the gallery itself (the pages allow no inline script and nothing from elsewhere).
"use strict";

function selectText(element) {
  const range = document.createRange();
  range.selectNodeContents(element);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}

async function copyPrompt(button) {
  const prompt = document.getElementById(button.dataset.copy);
  const status = document.getElementById("copy-status");
  const text = prompt.textContent;
  // The clipboard is offered only to secure pages (HTTPS, or loopback); elsewhere the prompt is
  // selected for the member to copy themselves.
  if (window.isSecureContext && navigator.clipboard && navigator.clipboard.writeText) {
    try {
      await navigator.clipboard.writeText(text);
      status.textContent = "Prompt copied.";
      return;
    } catch (error) {
      // Refused (no permission, page not focused): fall through to selecting it.
    }
  }
  selectText(prompt);
  status.textContent = "Prompt selected: press Ctrl+C (or Copy) to copy it.";
}

function localTimes() {
  for (const element of document.querySelectorAll("time[datetime]")) {
    const moment = new Date(element.getAttribute("datetime"));
    if (!Number.isNaN(moment.getTime())) {
      element.title = element.textContent;
      element.textContent = moment.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
    }
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const copy = document.getElementById("copy");
  if (copy) {
    copy.addEventListener("click", () => copyPrompt(copy));
  }
  const mine = document.getElementById("mine");
  if (mine && mine.form) {
    mine.addEventListener("change", () => mine.form.submit());
  }
  localTimes();
  document.body.dataset.ready = "1";
});
