/* Pipeline settings: drag a stage row to reorder the stages (SortableJS); the order form is then
   posted by htmx and the table it returns replaces the old one (with the error if the order was
   refused). Open stages and won/lost stages are two lists, so neither can be dragged into the other.
   Without JavaScript, or without SortableJS, the ↑/↓ buttons do the same through plain form posts. */
(function () {
  "use strict";

  function enableDragging(root) {
    if (!window.Sortable || !window.htmx) return;
    root.querySelectorAll("[data-sortable-stages]").forEach(function (body) {
      if (body.dataset.sortableReady) return;
      body.dataset.sortableReady = "1";
      window.Sortable.create(body, {
        handle: ".drag-handle",
        draggable: "tr",
        animation: 150,
        ghostClass: "is-ghost",
        onEnd: function (event) {
          if (event.oldIndex !== event.newIndex) {
            window.htmx.trigger(body.closest("form"), "stages-sorted");
          }
        },
      });
    });
  }

  if (window.htmx) {
    window.htmx.onLoad(enableDragging);
  } else {
    document.addEventListener("DOMContentLoaded", function () { enableDragging(document); });
  }
})();
