/* The Kanban board: drag a card to another column (or onto Won / Lost) and the move is saved at once.
 *
 * Every move goes to the deal's board-move URL. On success the server sends the card as it now is
 * and the fresh header of each column the move touched. When the stage rule refuses, the card goes
 * back where it was and a small panel opens on it with the message and an input for each missing
 * field; sending the panel tries the move again with those values. "Move to…" on a card opens a
 * copy of the board's one move form (#move-template, rendered once for the page) and sends it the
 * same way. Without this script that link leads to the deal page and its move form instead.
 */
(function () {
  "use strict";

  const board = document.getElementById("board");
  if (!board || typeof Sortable === "undefined") return;

  const text = {
    failed: board.dataset.msgFailed || "The move could not be saved. Check your connection and try again.",
    close: board.dataset.msgClose || "Close",
  };

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch (error) {
      return "";
    }
  }

  function fragment(html) {
    const template = document.createElement("template");
    template.innerHTML = (html || "").trim();
    return template.content.firstElementChild;
  }

  function announce(message) {
    const status = document.getElementById("board-status");
    if (status) status.textContent = message || "";
  }

  function columnList(stageId) {
    return board.querySelector('.column-cards[data-stage="' + stageId + '"]');
  }

  /* Cards are ordered by time in stage, longest first: a card that just arrived goes last. */
  function placeAtEnd(list, card) {
    list.insertBefore(card, list.querySelector(":scope > .load-more"));
  }

  function putBack(card, origin) {
    if (origin.next && origin.next.parentNode === origin.list) {
      origin.list.insertBefore(card, origin.next);
    } else {
      placeAtEnd(origin.list, card);
    }
  }

  function applyColumns(columns) {
    Object.values(columns || {}).forEach(function (column) {
      const fresh = fragment(column.html);
      const old = fresh && document.getElementById(fresh.id);
      if (old) old.replaceWith(fresh);
    });
  }

  function closePanel(card) {
    const slot = card.querySelector(".panel-slot");
    if (slot) slot.innerHTML = "";
    card.classList.remove("has-panel");
  }

  function openPanel(card, html) {
    const slot = card.querySelector(".panel-slot");
    if (!slot) return;
    slot.innerHTML = html;
    card.classList.add("has-panel");
    const first = slot.querySelector(".has-error input, .has-error select, .has-error textarea") ||
      slot.querySelector("input:not([type=hidden]), select, textarea, button");
    if (first) first.focus();
  }

  function messagePanel(message) {
    const wrap = document.createElement("div");
    wrap.className = "board-panel";
    const line = document.createElement("p");
    line.className = "panel-message";
    line.setAttribute("role", "alert");
    line.textContent = message;
    const actions = document.createElement("div");
    actions.className = "panel-actions";
    const close = document.createElement("button");
    close.type = "button";
    close.className = "btn btn-ghost btn-sm panel-cancel";
    close.textContent = text.close;
    actions.appendChild(close);
    wrap.append(line, actions);
    return wrap.outerHTML;
  }

  function landed(card, data) {
    applyColumns(data.columns);
    if (data.closed) {
      card.remove();
    } else {
      const fresh = fragment(data.card);
      const list = columnList(data.stage);
      if (fresh && list) {
        placeAtEnd(list, fresh);
        card.remove();
      }
    }
    announce(data.message);
  }

  /* POST the move; true when it landed, else what to show on the card. */
  async function send(card, body) {
    card.classList.add("is-saving");
    let response = null;
    let data = null;
    try {
      response = await fetch(card.dataset.moveUrl, {
        method: "POST", body: body, credentials: "same-origin",
        headers: { "Accept": "application/json", "X-CSRFToken": csrfToken() },
      });
      data = await response.json().catch(function () { return null; });
    } catch (error) {
      response = null;
    }
    card.classList.remove("is-saving");
    if (response && response.ok && data && data.ok) {
      landed(card, data);
      return true;
    }
    return data && data.panel ? data.panel : messagePanel((data && data.message) || text.failed);
  }

  async function moveTo(card, stageId, origin) {
    const body = new FormData();
    body.append("stage", stageId);
    closePanel(card);
    const result = await send(card, body);
    if (result !== true) {
      if (origin) putBack(card, origin);
      openPanel(card, result);
      announce("");
    }
  }

  /* The "Move to…" form, copied from the board's template into one card: its stages but the current one. */
  function closeMoveForm(card) {
    const form = card.querySelector(".move-to .move-form");
    if (form) form.remove();
    const link = card.querySelector(".move-link");
    if (link) link.setAttribute("aria-expanded", "false");
  }

  function openMoveForm(card) {
    const template = document.getElementById("move-template");
    const box = card.querySelector(".move-to");
    if (!template || !box) return;
    const form = template.content.firstElementChild.cloneNode(true);
    const id = "move-" + card.dataset.deal + "-stage";
    form.action = card.dataset.moveUrl;
    const select = form.querySelector("select");
    select.id = id;
    const current = select.querySelector('option[value="' + card.dataset.stage + '"]');
    if (current) current.remove();
    const label = form.querySelector("label");
    const name = card.querySelector(".deal-name");
    label.htmlFor = id;
    label.textContent = (label.dataset.label || "").replace("{name}", name ? name.textContent : "");
    box.appendChild(form);
    box.querySelector(".move-link").setAttribute("aria-expanded", "true");
    select.focus();
  }

  let origin = null;
  const group = "board-" + board.dataset.pipeline;
  const options = {
    sort: false,  // order inside a column is time in stage; a drop only changes the stage
    draggable: ".deal-card.can-move",
    filter: ".move-to, select, input, textarea, button, label, .board-panel",
    preventOnFilter: false,
    forceFallback: true,
    fallbackTolerance: 4,
    animation: 120,
    ghostClass: "is-ghost",
    chosenClass: "is-chosen",
    dragClass: "is-dragging",
    onStart: function (event) {
      origin = { list: event.from, next: event.item.nextElementSibling };
      document.body.classList.add("board-dragging");
    },
    onEnd: function (event) {
      document.body.classList.remove("board-dragging");
      const from = origin;
      origin = null;
      if (event.to === event.from) return;
      moveTo(event.item, event.to.dataset.stage, from);
    },
  };
  board.querySelectorAll(".column-cards").forEach(function (list) {
    Sortable.create(list, Object.assign({ group: { name: group, pull: true, put: true } }, options));
  });
  document.querySelectorAll(".zone-drop").forEach(function (zone) {
    Sortable.create(zone, Object.assign({ group: { name: group, pull: false, put: true } }, options));
  });

  document.addEventListener("submit", function (event) {
    const form = event.target;
    const card = form.closest && form.closest(".deal-card");
    if (!card || !card.dataset.moveUrl) return;
    if (form.matches(".board-panel")) {
      event.preventDefault();
      send(card, new FormData(form)).then(function (result) {
        if (result !== true) openPanel(card, result);
      });
    } else if (form.matches(".move-form")) {
      event.preventDefault();
      const stage = new FormData(form).get("stage");
      closeMoveForm(card);
      moveTo(card, stage, null);
    }
  });

  document.addEventListener("click", function (event) {
    const link = event.target.closest && event.target.closest(".move-link");
    const owner = link && link.closest(".deal-card");
    if (!owner || !owner.dataset.moveUrl) return;
    event.preventDefault();
    if (owner.querySelector(".move-to .move-form")) closeMoveForm(owner);
    else openMoveForm(owner);
  });

  document.addEventListener("click", function (event) {
    const cancel = event.target.closest && event.target.closest(".panel-cancel");
    const card = cancel && cancel.closest(".deal-card");
    if (!card) return;
    event.preventDefault();
    closePanel(card);
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    const moving = event.target.closest && event.target.closest(".move-form");
    if (moving && moving.closest(".move-to")) {
      const card = moving.closest(".deal-card");
      closeMoveForm(card);
      const link = card.querySelector(".move-link");
      if (link) link.focus();
      return;
    }
    const card = event.target.closest && event.target.closest(".deal-card.has-panel");
    if (card) closePanel(card);
  });

  /* "Load more" brings the next page; a card moved in meanwhile may come again: keep its later copy. */
  document.body.addEventListener("htmx:afterSettle", function () {
    board.querySelectorAll(".column-cards").forEach(function (list) {
      const seen = new Map();
      list.querySelectorAll(":scope > .deal-card").forEach(function (card) {
        if (seen.has(card.id)) seen.get(card.id).remove();
        seen.set(card.id, card);
      });
    });
  });
})();
