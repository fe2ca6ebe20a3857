/* Morvo chat client: the companion (/app/chat/<id>/) and the public chat (/c/<slug>/).
 *
 * Protocol: docs/websocket.md. Plain JavaScript, no build step.
 *
 * Safety rule of this file: message content and metadata are only ever put in the page with
 * textContent (never innerHTML), so HTML or script in a message shows as text. Links come only
 * from metadata.sources and only with an http(s) URL.
 */
(function () {
  "use strict";

  var root = document.querySelector("[data-chat]");
  // Generated text a user may copy (as conversations.views.ATTACHMENT_TYPES).
  var ATTACHMENT_TYPES = ["content", "image_idea", "campaign_plan", "seo"];
  var configElement = document.getElementById("chat-config");
  var stringsElement = document.getElementById("chat-strings");
  if (!root || !configElement || !stringsElement) {
    return;
  }
  var config = JSON.parse(configElement.textContent);
  var strings = JSON.parse(stringsElement.textContent);

  var TYPING_SEND_INTERVAL_MS = 3000;
  var TYPING_SHOW_MS = { assistant: 45000, agent: 6000 };
  var BACKOFF_BASE_MS = 500;
  var BACKOFF_MAX_MS = 30000;
  var FINAL_CLOSE_CODES = { 4401: true, 4403: true, 4404: true };

  var elements = {
    scroller: root.querySelector("[data-scroller]"),
    list: root.querySelector("[data-messages]"),
    empty: root.querySelector("[data-empty]"),
    typing: root.querySelector("[data-typing]"),
    typingLabel: root.querySelector("[data-typing-label]"),
    alert: root.querySelector("[data-alert]"),
    form: root.querySelector("[data-composer]"),
    input: root.querySelector("[data-input]"),
    counter: root.querySelector("[data-counter]"),
    send: root.querySelector("[data-send]"),
    connection: root.querySelector("[data-connection]"),
    connectionLabel: root.querySelector("[data-connection-label]"),
    personBanner: root.querySelector("[data-person-banner]"),
  };

  var state = {
    socket: null,
    connection: "connecting",
    attempt: 0,
    reconnectTimer: null,
    closedForGood: false,
    lastId: Number(config.lastMessageId) || 0,
    seen: new Set(),
    pending: new Map(), // client_message_id -> {content, element, acked}
    lastTypingSent: 0,
    typingTimer: null,
    readSent: 0,
    alertTimer: null,
  };

  // ------------------------------------------------------------------ helpers

  function newClientId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    // randomUUID needs a secure context; plain http on a LAN address falls back here.
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map.call(bytes, function (b) {
      return (b + 0x100).toString(16).slice(1);
    });
    return [hex.slice(0, 4), hex.slice(4, 6), hex.slice(6, 8), hex.slice(8, 10), hex.slice(10)]
      .map(function (part) {
        return part.join("");
      })
      .join("-");
  }

  function make(tag, className, text) {
    var element = document.createElement(tag);
    if (className) {
      element.className = className;
    }
    if (text !== undefined && text !== null) {
      element.textContent = String(text);
    }
    return element;
  }

  function asText(value) {
    return typeof value === "string" ? value : value === null || value === undefined ? "" : String(value);
  }

  function safeUrl(value) {
    if (typeof value !== "string") {
      return null;
    }
    try {
      var url = new URL(value.trim());
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (error) {
      return null;
    }
  }

  function pad(number) {
    return number < 10 ? "0" + number : String(number);
  }

  function formatTime(iso) {
    var date = iso ? new Date(iso) : new Date();
    if (isNaN(date.getTime())) {
      return "";
    }
    return pad(date.getHours()) + ":" + pad(date.getMinutes());
  }

  function nearBottom() {
    var scroller = elements.scroller;
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 120;
  }

  function scrollToBottom() {
    elements.scroller.scrollTop = elements.scroller.scrollHeight;
  }

  function showAlert(text, sticky) {
    window.clearTimeout(state.alertTimer);
    elements.alert.textContent = text;
    elements.alert.hidden = false;
    if (!sticky) {
      state.alertTimer = window.setTimeout(function () {
        elements.alert.hidden = true;
      }, 8000);
    }
  }

  // ------------------------------------------------------------------ rendering

  function renderKpis(kpis) {
    var box = make("div", "message__kpis");
    kpis.forEach(function (kpi) {
      if (!kpi || typeof kpi !== "object") {
        return;
      }
      var card = make("div", "kpi");
      var label = make("span", "kpi__label", asText(kpi.label));
      label.dir = "auto";
      var value = make("span", "kpi__value");
      value.appendChild(make("bdi", "number", asText(kpi.value)));
      if (kpi.unit) {
        value.appendChild(document.createTextNode(" "));
        var unit = make("span", "kpi__unit", asText(kpi.unit));
        unit.dir = "auto";
        value.appendChild(unit);
      }
      card.appendChild(label);
      card.appendChild(value);
      box.appendChild(card);
    });
    return box;
  }

  function renderAttachment(item) {
    var block = make("div", "attachment");
    var head = make("div", "attachment__head");
    var title = make("strong", "attachment__title", asText(item.title) || strings.generatedContent);
    title.dir = "auto";
    var copy = make("button", "btn btn--secondary btn--small attachment__copy", strings.copy);
    copy.type = "button";
    copy.setAttribute("data-copy", "");
    head.appendChild(title);
    head.appendChild(copy);
    var text = make("div", "attachment__text", asText(item.text));
    text.dir = "auto";
    block.appendChild(head);
    block.appendChild(text);
    return block;
  }

  function renderSources(sources) {
    var links = [];
    sources.forEach(function (source) {
      if (!source || typeof source !== "object") {
        return;
      }
      var url = safeUrl(source.url);
      var title = asText(source.title) || url;
      if (title) {
        // A knowledge-base document has a title and no web address: cited as text.
        links.push({ url: url, title: title });
      }
    });
    if (!links.length) {
      return null;
    }
    var box = make("div", "message__sources");
    box.appendChild(make("span", "message__sources-title", strings.sources));
    var list = make("ul");
    links.forEach(function (link) {
      var item = make("li");
      if (link.url) {
        var anchor = make("a", null, link.title);
        anchor.href = link.url;
        anchor.target = "_blank";
        anchor.rel = "noopener noreferrer nofollow";
        anchor.dir = "auto";
        item.appendChild(anchor);
      } else {
        var label = make("span", null, link.title);
        label.dir = "auto";
        item.appendChild(label);
      }
      list.appendChild(item);
    });
    box.appendChild(list);
    return box;
  }

  function renderSuggestions(suggestions) {
    var box = make("div", "message__suggestions");
    suggestions.forEach(function (suggestion) {
      if (typeof suggestion !== "string" || !suggestion.trim()) {
        return;
      }
      var chip = make("button", "chip", suggestion);
      chip.type = "button";
      chip.dir = "auto";
      chip.setAttribute("data-suggestion", "");
      box.appendChild(chip);
    });
    return box.childNodes.length ? box : null;
  }

  /** A message element, the same shape the server renders (templates/conversations/_message.html). */
  function renderMessage(message) {
    var role = asText(message.role);
    var metadata = message.metadata && typeof message.metadata === "object" ? message.metadata : {};
    var item = make("li", "message message--" + role + (metadata.failure ? " message--failure" : ""));
    item.setAttribute("data-role", role);
    if (message.id) {
      item.setAttribute("data-message-id", String(message.id));
    }
    if (role === "system") {
      var notice = make("p", "message__notice", asText(message.content));
      notice.dir = "auto";
      item.appendChild(notice);
      return item;
    }
    var bubble = make("div", "message__bubble");
    bubble.appendChild(make("span", "message__author", (strings.names && strings.names[role]) || ""));
    var content = make("p", "message__content", asText(message.content));
    content.dir = "auto";
    bubble.appendChild(content);
    if (Array.isArray(metadata.kpis) && metadata.kpis.length) {
      bubble.appendChild(renderKpis(metadata.kpis));
    }
    if (Array.isArray(metadata.attachments)) {
      metadata.attachments.forEach(function (attachment) {
        if (
          attachment &&
          typeof attachment === "object" &&
          ATTACHMENT_TYPES.indexOf(attachment.type || "content") !== -1 &&
          asText(attachment.text)
        ) {
          bubble.appendChild(renderAttachment(attachment));
        }
      });
    }
    if (Array.isArray(metadata.sources)) {
      var sources = renderSources(metadata.sources);
      if (sources) {
        bubble.appendChild(sources);
      }
    }
    var time = make("time", "message__time", formatTime(message.created_at));
    if (message.created_at) {
      time.setAttribute("datetime", message.created_at);
    }
    bubble.appendChild(time);
    item.appendChild(bubble);
    if (Array.isArray(metadata.suggestions) && (role === "assistant" || role === "agent")) {
      var chips = renderSuggestions(metadata.suggestions);
      if (chips) {
        item.appendChild(chips);
      }
    }
    return item;
  }

  /** Suggestions belong to the latest reply only: older ones would answer a stale question. */
  function dropOldSuggestions(keep) {
    elements.list.querySelectorAll(".message__suggestions").forEach(function (box) {
      if (!keep || !keep.contains(box)) {
        box.remove();
      }
    });
  }

  function append(element) {
    var stick = nearBottom() || element.classList.contains("message--user");
    elements.list.appendChild(element);
    elements.empty.hidden = true;
    dropOldSuggestions(element);
    if (stick) {
      scrollToBottom();
    }
  }

  function setPendingState(element, status) {
    element.classList.toggle("message--sending", status === "sending");
    element.classList.toggle("message--unsent", status === "unsent");
    var old = element.querySelector(".message__status");
    if (old) {
      old.remove();
    }
    if (!status) {
      return;
    }
    var bubble = element.querySelector(".message__bubble");
    var line = make("span", "message__status", status === "sending" ? strings.sending : strings.notSent);
    if (status === "unsent") {
      var retry = make("button", "btn btn--link btn--small", strings.retry);
      retry.type = "button";
      retry.setAttribute("data-retry", "");
      line.appendChild(document.createTextNode(" "));
      line.appendChild(retry);
    }
    bubble.appendChild(line);
  }

  // ------------------------------------------------------------------ person / typing / connection

  function setHandledBy(handledBy) {
    var human = handledBy === "human";
    // The banner takes room from the message list: keep the latest message in view.
    var stick = nearBottom();
    elements.personBanner.hidden = !human;
    root.classList.toggle("chat--human", human);
    if (human) {
      hideTyping();
    }
    if (stick) {
      scrollToBottom();
    }
  }

  function showTyping(role) {
    var label = strings.typing && strings.typing[role];
    if (!label) {
      return;
    }
    elements.typingLabel.textContent = label;
    var stick = nearBottom();
    elements.typing.hidden = false;
    if (stick) {
      scrollToBottom();
    }
    window.clearTimeout(state.typingTimer);
    state.typingTimer = window.setTimeout(hideTyping, TYPING_SHOW_MS[role] || 6000);
  }

  function hideTyping() {
    window.clearTimeout(state.typingTimer);
    elements.typing.hidden = true;
  }

  function setConnection(name) {
    state.connection = name;
    elements.connection.setAttribute("data-state", name);
    elements.connectionLabel.textContent = strings.connection[name] || name;
    root.setAttribute("data-connection-state", name);
  }

  // ------------------------------------------------------------------ incoming frames

  function onMessage(message) {
    var id = Number(message.id);
    if (!id || state.seen.has(id)) {
      return; // a replay after reconnect, or the echo of a message already shown
    }
    state.seen.add(id);
    state.lastId = Math.max(state.lastId, id);
    var clientId = message.client_message_id;
    var pending = clientId ? state.pending.get(clientId) : null;
    var element = renderMessage(message);
    if (pending) {
      state.pending.delete(clientId);
      pending.element.replaceWith(element);
      dropOldSuggestions(null);
    } else {
      append(element);
    }
    if (message.role === "assistant" || message.role === "agent") {
      hideTyping();
    }
    markRead();
  }

  function onAck(frame) {
    var pending = state.pending.get(frame.client_message_id);
    if (!pending) {
      return;
    }
    var id = Number(frame.message_id);
    if (state.seen.has(id)) {
      // The message frame of this id arrived already (e.g. replayed): drop the copy.
      state.pending.delete(frame.client_message_id);
      pending.element.remove();
      return;
    }
    pending.acked = true;
    pending.element.setAttribute("data-message-id", String(id));
    setPendingState(pending.element, null);
  }

  function onError(frame) {
    var errors = strings.errors || {};
    var text = errors[frame.code] || errors.generic;
    var pending = frame.client_message_id ? state.pending.get(frame.client_message_id) : null;
    if (pending) {
      // Refused: nothing was stored. The message stays on screen to retry, not resent by itself.
      pending.refused = true;
      setPendingState(pending.element, "unsent");
    }
    showAlert(text, false);
  }

  function onFrame(event) {
    var frame;
    try {
      frame = JSON.parse(event.data);
    } catch (error) {
      return;
    }
    if (!frame || typeof frame !== "object") {
      return;
    }
    switch (frame.type) {
      case "message":
        onMessage(frame);
        break;
      case "ack":
        onAck(frame);
        break;
      case "typing":
        if (frame.role === "assistant" || frame.role === "agent") {
          showTyping(frame.role);
        }
        break;
      case "status":
        setHandledBy(frame.handled_by);
        break;
      case "conversation":
        // The conversation was replaced (an empty one pruned while the page stayed open):
        // reconnect to the new one from now on.
        if (typeof frame.socket_path === "string" && frame.socket_path.indexOf("/ws/chat/") === 0) {
          config.socketPath = frame.socket_path;
        }
        break;
      case "error":
        onError(frame);
        break;
      default:
        break;
    }
  }

  // ------------------------------------------------------------------ socket

  function socketUrl() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var url = scheme + window.location.host + config.socketPath;
    if (state.lastId) {
      url += "?after=" + encodeURIComponent(String(state.lastId));
    }
    return url;
  }

  function isOpen() {
    return state.socket && state.socket.readyState === WebSocket.OPEN;
  }

  function sendFrame(frame) {
    if (!isOpen()) {
      return false;
    }
    state.socket.send(JSON.stringify(frame));
    return true;
  }

  function connect() {
    window.clearTimeout(state.reconnectTimer);
    if (state.closedForGood) {
      return;
    }
    setConnection(state.attempt ? "reconnecting" : "connecting");
    var socket;
    try {
      socket = new WebSocket(socketUrl());
    } catch (error) {
      scheduleReconnect();
      return;
    }
    state.socket = socket;
    socket.addEventListener("open", function () {
      if (state.socket !== socket) {
        return;
      }
      state.attempt = 0;
      setConnection("online");
      resendPending();
      markRead();
    });
    socket.addEventListener("message", function (event) {
      if (state.socket === socket) {
        onFrame(event);
      }
    });
    socket.addEventListener("close", function (event) {
      if (state.socket !== socket) {
        return;
      }
      state.socket = null;
      hideTyping();
      if (FINAL_CLOSE_CODES[event.code]) {
        state.closedForGood = true;
        setConnection("offline");
        showAlert(strings.errors.closed, true);
        updateComposer();
        return;
      }
      scheduleReconnect();
    });
  }

  /** Exponential backoff with full jitter, so a server restart is not met by every client at once. */
  function scheduleReconnect() {
    window.clearTimeout(state.reconnectTimer);
    if (state.closedForGood) {
      return;
    }
    if (navigator.onLine === false) {
      setConnection("offline");
      return; // the "online" event reconnects
    }
    state.attempt += 1;
    setConnection("reconnecting");
    var ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * Math.pow(2, state.attempt - 1));
    var delay = ceiling / 2 + Math.random() * (ceiling / 2);
    state.reconnectTimer = window.setTimeout(connect, delay);
  }

  function resendPending() {
    state.pending.forEach(function (pending, clientId) {
      if (!pending.acked && !pending.refused) {
        sendFrame({ type: "user_message", content: pending.content, client_message_id: clientId });
      }
    });
  }

  function markRead() {
    if (document.visibilityState !== "visible" || !isOpen() || state.lastId <= state.readSent) {
      return;
    }
    state.readSent = state.lastId;
    sendFrame({ type: "read", message_id: state.lastId });
  }

  // ------------------------------------------------------------------ composer

  function updateComposer() {
    var value = elements.input.value;
    var length = value.trim().length;
    var max = Number(config.maxLength) || 4000;
    var over = value.trim().length > max;
    var bdi = elements.counter.querySelector("bdi") || elements.counter;
    bdi.textContent = value.length + " / " + max;
    elements.counter.classList.toggle("composer__counter--over", over);
    elements.counter.classList.toggle("composer__counter--near", !over && value.length > max * 0.9);
    elements.counter.title = over ? strings.tooLong.replace("%(count)s", String(length - max)) : "";
    elements.input.setAttribute("aria-invalid", over ? "true" : "false");
    elements.send.disabled = state.closedForGood || length === 0 || over;
    // Grow with the text, up to the CSS max-height.
    elements.input.style.height = "auto";
    elements.input.style.height = elements.input.scrollHeight + 2 + "px";
  }

  function sendMessage(content) {
    content = content.trim();
    var max = Number(config.maxLength) || 4000;
    if (!content || content.length > max || state.closedForGood) {
      return false;
    }
    var clientId = newClientId();
    var element = renderMessage({
      role: "user",
      content: content,
      metadata: {},
      created_at: new Date().toISOString(),
    });
    element.setAttribute("data-client-message-id", clientId);
    setPendingState(element, "sending");
    state.pending.set(clientId, { content: content, element: element, acked: false, refused: false });
    append(element);
    // When the socket is down the message waits: it is sent as soon as we are back.
    sendFrame({ type: "user_message", content: content, client_message_id: clientId });
    return true;
  }

  elements.form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (sendMessage(elements.input.value)) {
      elements.input.value = "";
      updateComposer();
    }
    elements.input.focus();
  });

  elements.input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      if (typeof elements.form.requestSubmit === "function") {
        elements.form.requestSubmit();
      } else {
        elements.form.dispatchEvent(new Event("submit", { cancelable: true }));
      }
    }
  });

  elements.input.addEventListener("input", function () {
    updateComposer();
    var now = Date.now();
    if (elements.input.value.trim() && now - state.lastTypingSent > TYPING_SEND_INTERVAL_MS) {
      if (sendFrame({ type: "typing" })) {
        state.lastTypingSent = now;
      }
    }
  });

  root.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    if (!target) {
      return;
    }
    var chip = target.closest("[data-suggestion]");
    if (chip) {
      if (sendMessage(chip.textContent || "")) {
        chip.closest(".message__suggestions").remove();
      }
      return;
    }
    var copy = target.closest("[data-copy]");
    if (copy) {
      var text = copy.closest(".attachment").querySelector(".attachment__text").textContent;
      var done = function () {
        copy.textContent = strings.copied;
        window.setTimeout(function () {
          copy.textContent = strings.copy;
        }, 2000);
      };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(done, function () {
          showAlert(strings.errors.generic, false);
        });
      }
      return;
    }
    var retry = target.closest("[data-retry]");
    if (retry) {
      var element = retry.closest(".message");
      var clientId = element.getAttribute("data-client-message-id");
      var pending = clientId && state.pending.get(clientId);
      if (pending) {
        pending.refused = false;
        setPendingState(element, "sending");
        sendFrame({ type: "user_message", content: pending.content, client_message_id: clientId });
      }
    }
  });

  // ------------------------------------------------------------------ start

  elements.list.querySelectorAll("[data-message-id]").forEach(function (element) {
    var id = Number(element.getAttribute("data-message-id"));
    if (id) {
      state.seen.add(id);
      state.lastId = Math.max(state.lastId, id);
    }
  });
  // Times in the reader's own clock, the same way new messages show them.
  elements.list.querySelectorAll("time[datetime]").forEach(function (time) {
    var text = formatTime(time.getAttribute("datetime"));
    if (text) {
      time.textContent = text;
    }
  });
  setHandledBy(config.handledBy);
  updateComposer();
  scrollToBottom();

  document.addEventListener("visibilitychange", markRead);
  window.addEventListener("focus", markRead);
  window.addEventListener("online", function () {
    if (!isOpen() && !state.closedForGood) {
      state.attempt = Math.max(state.attempt, 1);
      connect();
    }
  });
  window.addEventListener("offline", function () {
    if (!isOpen()) {
      setConnection("offline");
    }
  });

  connect();
})();
