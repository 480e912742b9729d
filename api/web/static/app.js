// Progressive enhancement only: every page works without JavaScript.
(function () {
  "use strict";
  // A form is sent once: a second click while the first submission is on its way does nothing
  // (the server also answers a resubmitted form from its idempotency store).
  document.querySelectorAll("form[data-once]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (form.dataset.sent === "1") {
        event.preventDefault();
        return;
      }
      form.dataset.sent = "1";
      form.querySelectorAll("button[type=submit]").forEach(function (b) {
        b.setAttribute("aria-disabled", "true");
        b.classList.add("busy");
      });
    });
  });
  // Coming back to a page from the history resets its forms' one-submission guard.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) { return; }
    document.querySelectorAll("form[data-once]").forEach(function (form) {
      delete form.dataset.sent;
      form.querySelectorAll("button.busy").forEach(function (b) {
        b.classList.remove("busy");
        b.removeAttribute("aria-disabled");
      });
    });
  });
  // Move keyboard focus to the first problem after a refused submission.
  var firstError = document.querySelector("[aria-invalid=true], #stale, #form-errors");
  if (firstError) {
    if (!firstError.hasAttribute("tabindex") && !/INPUT|SELECT|TEXTAREA|FIELDSET/.test(firstError.tagName)) {
      firstError.setAttribute("tabindex", "-1");
    }
    firstError.focus();
  }
  // A running verification: follow its progress, then show the report.
  var job = document.getElementById("verification");
  if (job && job.dataset.state === "running") {
    var bar = document.getElementById("progress");
    var text = document.getElementById("progress-text");
    var poll = function () {
      fetch("/web/audit/verifications/" + encodeURIComponent(job.dataset.job) + "/status",
            {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (r) { return r.json(); })
        .then(function (s) {
          if (s.state !== "running") { window.location.reload(); return; }
          bar.max = Math.max(s.records_total, 1);
          bar.value = s.records_done;
          text.textContent = text.textContent.replace(/\d+\s*\/\s*\d+|\d+ of \d+/,
            document.documentElement.lang === "en" ? s.records_done + " of " + s.records_total
                                                   : s.records_done + " / " + s.records_total);
          window.setTimeout(poll, 400);
        })
        .catch(function () { window.setTimeout(poll, 1500); });
    };
    window.setTimeout(poll, 300);
  }
})();
// A document's SHA-256 computed in the browser from the chosen file (the file is never sent).
(function () {
  "use strict";
  if (!window.crypto || !window.crypto.subtle) { return; }  // only in a secure context
  document.querySelectorAll("input[data-hash-target]").forEach(function (picker) {
    picker.parentElement.hidden = false;
    picker.addEventListener("change", function () {
      var file = picker.files && picker.files[0];
      var target = document.getElementById(picker.dataset.hashTarget);
      var title = document.getElementById(picker.dataset.titleTarget);
      if (!file || !target) { return; }
      file.arrayBuffer().then(function (bytes) {
        return window.crypto.subtle.digest("SHA-256", bytes);
      }).then(function (digest) {
        target.value = Array.from(new Uint8Array(digest)).map(function (b) {
          return b.toString(16).padStart(2, "0");
        }).join("");
        if (title && !title.value) { title.value = file.name.replace(/\.[^.]+$/, ""); }
      });
    });
  });
})();
