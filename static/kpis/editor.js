/* KPI editor: the preview itself is htmx (debounced on the formula's textarea, see editor.html); this script
   only puts the cursor on a formula error. Positions from the server count characters (code points);
   the text box counts UTF-16 units, so they are converted before selecting. */
(function () {
  "use strict";

  function formulaInput() {
    return document.querySelector("[data-formula-input]");
  }

  // A code-point offset into the text as a UTF-16 index (emoji and other astral characters take two).
  function utf16Index(text, codePoints) {
    var index = 0;
    for (var i = 0; i < codePoints && index < text.length; i++) {
      var code = text.charCodeAt(index);
      index += code >= 0xd800 && code <= 0xdbff && index + 1 < text.length ? 2 : 1;
    }
    return index;
  }

  function selectError(holder, focus) {
    var input = formulaInput();
    if (!input || !holder) return;
    var start = parseInt(holder.getAttribute("data-error-position"), 10);
    var end = parseInt(holder.getAttribute("data-error-end"), 10);
    if (isNaN(start)) return;
    if (isNaN(end) || end <= start) end = start + 1;
    var text = input.value;
    var from = utf16Index(text, start);
    var to = Math.max(from, utf16Index(text, end));
    if (focus) input.focus();
    input.setSelectionRange(from, Math.min(to, text.length));
  }

  function reveal(root) {
    (root || document).querySelectorAll("[data-show-error]").forEach(function (button) {
      button.hidden = false;
    });
  }

  function markField(root) {
    var input = formulaInput();
    if (!input || !root || root.id !== "kpi-preview") return;
    var invalid = !!root.querySelector(".preview-error");
    input.classList.toggle("has-preview-error", invalid);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-show-error]");
    if (!button) return;
    event.preventDefault();
    selectError(button.closest("[data-error-position]"), true);
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    reveal(event.target);
    markField(event.target);
  });

  document.addEventListener("DOMContentLoaded", function () {
    reveal(document);
    var input = formulaInput();
    // After a refused save the page comes back with the error: put the cursor on it.
    if (input && input.hasAttribute("data-error-position")) selectError(input, true);
  });
})();
