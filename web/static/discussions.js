// The discussion panel beside a document (web/templates/_discussion.html), on top of forms
// that work without JavaScript:
// - live: an EventSource on /documents/{id}/events; on "comments" the threads are fetched again
//   as a server-rendered fragment (escaped and sanitized there) and swapped in, keeping what
//   the reader is typing and which reply/edit boxes are open;
// - @ mentions: typing "@" and a few letters suggests people who may read the document
//   (GET /api/v1/documents/{id}/mention-candidates?q=) and inserts "@[Name](user:ID)".
// No inline handlers or styles: the CSP forbids them.
(function () {
  "use strict";

  var panel = document.querySelector("[data-discussion]");
  if (!panel) return;
  var status = panel.querySelector("[data-live-status]");

  // -- live refresh ------------------------------------------------------------------------

  function keepState(container) {
    var state = { values: {}, open: {}, focus: null, selection: null };
    container.querySelectorAll("textarea[id]").forEach(function (box) {
      if (box.value !== box.defaultValue) state.values[box.id] = box.value;
    });
    container.querySelectorAll("details").forEach(function (details) {
      var box = details.querySelector("textarea[id]");
      if (box && details.open) state.open[box.id] = true;
    });
    var active = document.activeElement;
    if (active && active.id && container.contains(active)) {
      state.focus = active.id;
      if (active.tagName === "TEXTAREA") state.selection = [active.selectionStart, active.selectionEnd];
    }
    return state;
  }

  function restoreState(container, state) {
    Object.keys(state.values).forEach(function (id) {
      var box = document.getElementById(id);
      if (box && container.contains(box)) box.value = state.values[id];
    });
    Object.keys(state.open).forEach(function (id) {
      var box = document.getElementById(id);
      var details = box && box.closest("details");
      if (details) details.open = true;
    });
    if (state.focus) {
      var element = document.getElementById(state.focus);
      if (element && container.contains(element)) {
        element.focus();
        if (state.selection && element.setSelectionRange) {
          element.setSelectionRange(state.selection[0], state.selection[1]);
        }
      }
    }
  }

  var refreshing = false;
  var again = false;

  function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    fetch(panel.dataset.fragmentUrl, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (!response.ok) throw new Error("status " + response.status);
        return response.text();
      })
      .then(function (html) {
        var current = panel.querySelector("[data-discussion-threads]");
        // The fragment is our own server's rendering: names escaped, bodies sanitized (nh3).
        var parsed = new DOMParser().parseFromString(html, "text/html");
        var fresh = parsed.querySelector("[data-discussion-threads]");
        if (!current || !fresh) return;
        var state = keepState(current);
        var adopted = document.importNode(fresh, true);
        current.replaceWith(adopted);
        restoreState(adopted, state);
        attachMentions(adopted);
        var count = panel.querySelector("#discussion-title .count");
        if (count) count.textContent = "(" + adopted.dataset.total + ")";
        if (status) status.textContent = panel.dataset.textUpdated || "";
        panel.dataset.refreshed = String(Number(panel.dataset.refreshed || "0") + 1);
        // The note editor re-reads the anchors of inline comments (web/editor/src/anchors.js).
        document.dispatchEvent(new CustomEvent("plein:discussion-refreshed"));
      })
      .catch(function () { /* the next notice or reconnect tries again */ })
      .then(function () {
        refreshing = false;
        if (again) { again = false; refresh(); }
      });
  }

  if (window.EventSource && panel.dataset.eventsUrl) {
    var source = new EventSource(panel.dataset.eventsUrl);
    var opened = false;
    source.addEventListener("ready", function () {
      // After a reconnect something may have been missed: fetch once to catch up.
      if (opened) refresh();
      opened = true;
      panel.dataset.live = "connected";
    });
    source.addEventListener("comments", refresh);
    source.addEventListener("gone", function () {
      source.close();
      panel.dataset.live = "gone";
      if (status) status.textContent = panel.dataset.textGone || "";
    });
    source.addEventListener("error", function () {
      if (panel.dataset.live !== "gone") panel.dataset.live = "reconnecting";
    });
  }

  // -- @ mentions --------------------------------------------------------------------------

  var listCounter = 0;

  function attachMentions(root) {
    root.querySelectorAll("textarea[data-mentions]").forEach(function (box) {
      if (box.dataset.mentionsReady) return;
      box.dataset.mentionsReady = "true";
      setUpMentions(box);
    });
  }

  function setUpMentions(box) {
    listCounter += 1;
    var list = document.createElement("ul");
    list.className = "mention-list";
    list.id = "mention-list-" + listCounter;
    list.setAttribute("role", "listbox");
    list.setAttribute("aria-label", panel.dataset.textSuggestions || "");
    list.hidden = true;
    box.insertAdjacentElement("afterend", list);
    box.setAttribute("aria-autocomplete", "list");
    box.setAttribute("aria-controls", list.id);
    var items = [];
    var active = -1;
    var asked = 0;

    function query() {
      var before = box.value.slice(0, box.selectionStart);
      var found = /(^|\s)@([^\s@\[\]()]{0,40})$/.exec(before);
      return found ? { text: found[2], start: before.length - found[2].length - 1 } : null;
    }

    function close() {
      list.hidden = true;
      list.textContent = "";
      items = [];
      active = -1;
      box.removeAttribute("aria-activedescendant");
      box.setAttribute("aria-expanded", "false");
    }

    function highlight(index) {
      active = index;
      items.forEach(function (item, i) {
        item.element.setAttribute("aria-selected", i === index ? "true" : "false");
      });
      if (index >= 0) box.setAttribute("aria-activedescendant", items[index].element.id);
    }

    function choose(index) {
      var found = query();
      var person = items[index];
      if (!found || !person) return close();
      var after = box.value.slice(box.selectionStart);
      var insert = person.mention + " ";
      box.value = box.value.slice(0, found.start) + insert + after;
      var caret = found.start + insert.length;
      box.setSelectionRange(caret, caret);
      close();
      box.focus();
    }

    function show(people) {
      close();
      if (!people.length) return;
      people.forEach(function (person, i) {
        var option = document.createElement("li");
        option.id = list.id + "-" + i;
        option.setAttribute("role", "option");
        option.className = "mention-option";
        var name = document.createElement("span");
        name.textContent = person.name; // names are text, never HTML
        option.appendChild(name);
        if (person.organisation) {
          var org = document.createElement("span");
          org.className = "muted small";
          org.textContent = " · " + person.organisation;
          option.appendChild(org);
        }
        option.addEventListener("mousedown", function (event) {
          event.preventDefault(); // keep the focus in the text box
          choose(i);
        });
        list.appendChild(option);
        items.push({ element: option, mention: person.mention });
      });
      list.hidden = false;
      box.setAttribute("aria-expanded", "true");
      highlight(0);
    }

    box.addEventListener("input", function () {
      var found = query();
      if (!found) return close();
      asked += 1;
      var mine = asked;
      var url = panel.dataset.mentionsUrl + "?limit=8&q=" + encodeURIComponent(found.text);
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : []; })
        .then(function (people) { if (mine === asked) show(people); })
        .catch(close);
    });
    box.addEventListener("keydown", function (event) {
      if (list.hidden || !items.length) return;
      if (event.key === "ArrowDown") {
        event.preventDefault();
        highlight((active + 1) % items.length);
      } else if (event.key === "ArrowUp") {
        event.preventDefault();
        highlight((active - 1 + items.length) % items.length);
      } else if (event.key === "Enter" || event.key === "Tab") {
        event.preventDefault();
        choose(active < 0 ? 0 : active);
      } else if (event.key === "Escape") {
        event.preventDefault();
        close();
      }
    });
    box.addEventListener("blur", close);
  }

  attachMentions(panel);
})();
