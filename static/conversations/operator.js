/* The operators' live pages in the back office.
   - The conversations list listens on /ws/inbox/: a changed row is updated in place and
     highlighted; a conversation not on the page shows a "new activity — refresh" bar.
   - The conversation page listens on /ws/chat/<id>/ and appends new messages.
   Message content is only ever set with textContent, never parsed as HTML. */
(function () {
  "use strict";

  var root = document.querySelector("[data-operator-page]");
  if (!root || !("WebSocket" in window)) {
    return;
  }
  var labelsNode = document.getElementById("operator-labels");
  var labels = labelsNode ? JSON.parse(labelsNode.textContent) : {};
  var connectionNote = root.querySelector("[data-connection]");

  function label(kind, value) {
    return (labels[kind] && labels[kind][value]) || value;
  }

  function setBadge(container, field, value) {
    var node = container.querySelector('[data-field="' + field + '"]');
    if (!node || value === undefined || value === null) {
      return;
    }
    node.textContent = label(field, value);
    node.className = node.className.replace(new RegExp("operator-" + (field === "handled_by" ? "handled" : field) + "--\\S+"), "");
    node.classList.add("operator-" + (field === "handled_by" ? "handled" : field) + "--" + value);
  }

  function formatTime(iso, timeOnly) {
    var lang = document.documentElement.lang || undefined;
    var options = timeOnly ? { timeStyle: "short" } : { dateStyle: "short", timeStyle: "short" };
    try {
      // Western digits, as the server renders them.
      return new Date(iso).toLocaleString(lang ? lang + "-u-nu-latn" : undefined, options);
    } catch (error) {
      return new Date(iso).toLocaleString();
    }
  }

  function flash(node) {
    node.classList.remove("operator-flash");
    void node.offsetWidth; // restart the animation
    node.classList.add("operator-flash");
  }

  function connect(path, onFrame) {
    var delay = 1000;
    var after = root.getAttribute("data-after");
    function open() {
      var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
      var url = scheme + window.location.host + path + (after ? "?after=" + encodeURIComponent(after) : "");
      var socket = new WebSocket(url);
      socket.addEventListener("open", function () {
        delay = 1000;
        if (connectionNote) {
          connectionNote.hidden = true;
        }
      });
      socket.addEventListener("message", function (event) {
        var frame;
        try {
          frame = JSON.parse(event.data);
        } catch (error) {
          return;
        }
        var seen = onFrame(frame);
        if (seen) {
          after = String(seen);
        }
      });
      socket.addEventListener("close", function (event) {
        if (event.code === 4401 || event.code === 4403 || event.code === 4404) {
          return; // refused: reconnecting would be refused again
        }
        if (connectionNote) {
          connectionNote.hidden = false;
        }
        window.setTimeout(open, delay);
        delay = Math.min(delay * 2, 30000);
      });
    }
    open();
  }

  /* ------------------------------------------------------------------ the list */
  function listPage() {
    var bar = root.querySelector(".operator-bar");
    connect(root.getAttribute("data-socket"), function (frame) {
      if (frame.type !== "conversation") {
        return null;
      }
      var marker = document.querySelector('#result_list [data-conversation-id="' + String(frame.id) + '"]');
      var row = marker ? marker.closest("tr") : null;
      if (!row) {
        if (bar) {
          bar.hidden = false;
        }
        return null;
      }
      if (frame.title) {
        marker.textContent = frame.title;
      }
      setBadge(row, "status", frame.status);
      setBadge(row, "priority", frame.priority);
      setBadge(row, "handled_by", frame.handled_by);
      var labelsCell = row.querySelector('[data-field="labels"]');
      if (labelsCell && Array.isArray(frame.labels)) {
        labelsCell.textContent = frame.labels.join(" · ");
      }
      var unread = row.querySelector('[data-field="unread"]');
      if (unread && typeof frame.unread_for_agents === "number") {
        unread.textContent = String(frame.unread_for_agents);
        unread.hidden = frame.unread_for_agents === 0;
      }
      var activity = row.querySelector('[data-field="last_activity"]');
      if (activity && frame.last_activity_at) {
        activity.setAttribute("datetime", frame.last_activity_at);
        activity.textContent = formatTime(frame.last_activity_at, true);
      }
      row.classList.add("operator-row--changed");
      flash(row);
      return null;
    });
  }

  /* ------------------------------------------------------------------ one conversation */
  function conversationPage() {
    var list = root.querySelector("[data-thread]");
    var facts = root.querySelector(".operator-facts");

    function append(message) {
      if (!list || list.querySelector('[data-message-id="' + String(message.id) + '"]')) {
        return;
      }
      var empty = list.querySelector("[data-empty]");
      if (empty) {
        empty.remove();
      }
      var item = document.createElement("li");
      item.className = "operator-message operator-message--" + String(message.role).replace(/[^a-z]/g, "");
      item.setAttribute("data-message-id", String(message.id));
      var meta = document.createElement("div");
      meta.className = "operator-message__meta";
      var role = document.createElement("span");
      role.className = "operator-message__role";
      role.textContent = label("role", message.role);
      meta.appendChild(role);
      if (message.author) {
        var author = document.createElement("span");
        author.className = "operator-message__author";
        author.textContent = message.author;
        meta.appendChild(author);
      }
      var time = document.createElement("time");
      time.setAttribute("datetime", message.created_at || "");
      time.textContent = message.created_at ? formatTime(message.created_at) : "";
      meta.appendChild(time);
      var content = document.createElement("div");
      content.className = "operator-message__content";
      content.setAttribute("dir", "auto");
      content.textContent = message.content;
      item.appendChild(meta);
      item.appendChild(content);
      list.appendChild(item);
      flash(item);
      item.scrollIntoView({ block: "nearest" });
    }

    connect(root.getAttribute("data-socket"), function (frame) {
      if (frame.type === "message") {
        append(frame);
        return frame.id;
      }
      if (frame.type === "status" && facts) {
        setBadge(facts, "status", frame.status);
        setBadge(facts, "priority", frame.priority);
        setBadge(facts, "handled_by", frame.handled_by);
        flash(facts);
      }
      return null;
    });
  }

  if (root.getAttribute("data-operator-page") === "list") {
    listPage();
  } else {
    conversationPage();
  }
})();
