// Keyboard shortcuts and small comforts for the labelling form. The form works without it.
(function () {
  "use strict";
  const form = document.getElementById("label-form");
  if (!form) return;
  const skipForm = document.getElementById("skip-form");
  const left = document.getElementById("response-left");
  const right = document.getElementById("response-right");
  const keys = {
    a: ["choice", "left"], b: ["choice", "right"], t: ["choice", "tie"], x: ["choice", "both_bad"],
    1: ["confidence", "1"], 2: ["confidence", "2"], 3: ["confidence", "3"], 4: ["confidence", "4"],
  };

  function pick(name, value) {
    const input = form.querySelector(`input[name="${name}"][value="${value}"]`);
    if (input) {
      input.checked = true;
      input.dispatchEvent(new Event("change", { bubbles: true }));
    }
  }

  function highlight() {
    const checked = form.querySelector('input[name="choice"]:checked');
    const v = checked ? checked.value : "";
    left.classList.toggle("preferred", v === "left");
    right.classList.toggle("preferred", v === "right");
    left.classList.toggle("dispreferred", v === "right" || v === "both_bad");
    right.classList.toggle("dispreferred", v === "left" || v === "both_bad");
  }

  let sent = false;
  function once(target) {
    // One submission per page: a double press of Enter must not post the label twice.
    if (sent) return;
    if (target === form && !form.reportValidity()) return;
    sent = true;
    target.requestSubmit();
  }

  form.addEventListener("change", highlight);
  form.addEventListener("submit", () => { sent = true; });
  skipForm.addEventListener("submit", () => { sent = true; });

  document.addEventListener("keydown", (e) => {
    const el = e.target;
    const typing = el && (el.tagName === "TEXTAREA" || (el.tagName === "INPUT" && el.type === "text"));
    if (typing) {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); once(form); }
      if (e.key === "Escape") el.blur();
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
    if (el && (el.tagName === "BUTTON" || el.tagName === "A" || el.tagName === "SUMMARY")) return;
    const k = e.key.toLowerCase();
    if (keys[k]) { e.preventDefault(); pick(keys[k][0], keys[k][1]); }
    else if (e.key === "Enter") { e.preventDefault(); once(form); }
    else if (k === "s") { e.preventDefault(); once(skipForm); }
  });
  highlight();
})();
