/*
 * Flowdesk web-chat widget. Host pages include it with one tag:
 *   <script src="https://flowdesk.example/ui/widget/widget.js" data-title="Chat with us" defer></script>
 * Options (data-*): server, title, greeting, open, position (right|left), user-id, identity-hash, name.
 * The only global: window.FlowdeskWidget = {open(), close(), send(text), state()}.
 * Wire: JSON frames on ws(s)://<server>/ws/chat?visitor&since&user&hash&name —
 *   in: welcome, history, message, ack, typing, error; out: message {id, text}, typing {state}, read {seq}.
 * Message text is data: it only ever enters the page as text nodes.
 */
(function () {
  "use strict";

  if (window.FlowdeskWidget) return; // included twice: the first copy stays in charge

  // Captured now: document.currentScript is only set while this file first runs.
  const SCRIPT = document.currentScript || findOwnScript();

  const KEY_VISITOR = "flowdesk.visitor";
  const KEY_SEQ = "flowdesk.seq";
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 30000;
  const STABLE_AFTER_MS = 10000; // a connection up this long resets the backoff
  const HISTORY_WAIT_MS = 1500; // queued messages wait this long for `history`
  const TYPING_THROTTLE_MS = 3000; // at most one typing:true per this
  const TYPING_IDLE_MS = 5000; // typing:false after this much quiet
  const TYPING_SHOWN_MS = 15000; // the agent's typing indicator gives up after this
  const NOTICE_MS = 8000;
  const MAX_TRIES = 3; // sockets a message may be written to without an ack before it counts as failed
  const NEAR_BOTTOM_PX = 80;
  const FULL_SCREEN = window.matchMedia("(max-width: 479.98px)"); // must match widget.css

  const cfg = readConfig(SCRIPT);

  // localStorage throws in some privacy modes and sandboxed iframes: chat still works,
  // it just forgets the visitor on reload.
  const storage = {
    get(key) { try { return localStorage.getItem(key); } catch (_) { return null; } },
    set(key, value) { try { localStorage.setItem(key, String(value)); } catch (_) { /* see above */ } },
  };

  // ---- state -------------------------------------------------------------
  let ui = null, isOpen = false, unread = 0, choicesEl = null;
  const items = []; // rendered message records, in DOM order
  const byId = new Map(); // client id / server id -> record
  const bySeq = new Map(); // seq -> record
  const outbox = []; // client ids waiting for an ack, in the order they were typed
  let sentOnThisSocket = new Set(); // outbox ids already written to the current socket
  // A page load asks for the whole current conversation (since=0), so a reload shows it
  // again; a reconnect asks only for what this page has not rendered yet.
  let maxSeq = 0; // highest seq rendered on this page (the next `since`)
  const seenBefore = Number(storage.get(KEY_SEQ)) || 0; // rendered by an earlier page: not unread
  let lastReadSent = 0;
  // connection
  let ws = null, conn = "connecting", welcomed = false, awaitingHistory = false;
  let attempts = 0, retryAt = 0, retryTimer = 0, stableTimer = 0, historyTimer = 0, countdownTimer = 0;
  // typing (ours out, theirs in) and notices
  let typingSentAt = 0, typingOn = false, typingIdleTimer = 0, typingShownTimer = 0, noticeTimer = 0;

  const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
  const dateTimeFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });

  // ---- configuration and small helpers ------------------------------------
  function findOwnScript() {
    const all = document.querySelectorAll('script[src*="widget.js"]');
    return all[all.length - 1] || null;
  }

  function readConfig(el) {
    const d = (el && el.dataset) || {};
    const src = (el && el.src) || location.href;
    let origin = location.origin;
    try { origin = new URL(src, location.href).origin; } catch (_) { /* keep the page's */ }
    return {
      src, server: (d.server || origin).replace(/\/+$/, ""),
      title: d.title || "Chat with us", greeting: d.greeting || "", open: d.open === "true",
      position: d.position === "left" ? "left" : "right",
      userId: d.userId || "", identityHash: d.identityHash || "", name: d.name || "",
    };
  }

  function newId() {
    const c = window.crypto;
    if (c && typeof c.randomUUID === "function") return c.randomUUID();
    // randomUUID needs a secure context; plain-http pages still have getRandomValues.
    const bytes = new Uint8Array(16);
    if (c && c.getRandomValues) c.getRandomValues(bytes);
    else for (let i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
    return "c" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function isSeq(v) { return Number.isInteger(v) && v > 0; }
  /** Tiny element builder; strings become text nodes (never parsed as HTML). */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === "class") el.className = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) if (c != null && c !== false) el.append(c);
    return el;
  }

  function icon(paths) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    const attrs = { viewBox: "0 0 24 24", "aria-hidden": "true", focusable: "false", class: "fd-icon" };
    for (const [k, v] of Object.entries(attrs)) svg.setAttribute(k, v);
    for (const d of paths) svg.appendChild(document.createElementNS(ns, "path")).setAttribute("d", d);
    return svg;
  }
  const ICON_CHAT = ["M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z"];
  const ICON_CLOSE = ["M6 6l12 12", "M18 6L6 18"];

  // ---- building the DOM ---------------------------------------------------
  function buildUI() {
    const uid = newId().slice(0, 8);
    const u = {};
    u.badge = h("span", { class: "fd-badge", "aria-hidden": "true", hidden: true });
    u.launcher = h("button", {
      type: "button", class: "fd-launcher", "data-testid": "fd-launcher",
      "aria-label": "Open chat", "aria-expanded": "false", "aria-controls": "fd-panel-" + uid,
      onclick: () => (isOpen ? close() : open()),
    }, icon(ICON_CHAT), icon(ICON_CLOSE), u.badge);
    u.statusText = h("span", { class: "fd-status-text" }, "Connecting…");
    // The countdown ticks every second; hidden from screen readers so the live
    // region announces state changes only, not each tick.
    u.statusDetail = h("span", { class: "fd-status-detail", "aria-hidden": "true" });
    u.status = h("p", { class: "fd-status", "data-testid": "fd-status", "aria-live": "polite" },
      h("span", { class: "fd-dot", "aria-hidden": "true" }), u.statusText, u.statusDetail);
    const header = h("div", { class: "fd-header" },
      h("div", { class: "fd-header-text" }, h("p", { class: "fd-title" }, cfg.title), u.status),
      h("button", { type: "button", class: "fd-close", "aria-label": "Close chat", onclick: () => close() },
        icon(ICON_CLOSE)));
    u.log = h("div", {
      class: "fd-log", role: "log", "aria-live": "polite", "aria-label": "Messages",
      "data-testid": "fd-log", tabindex: "0", // focusable so keyboard users can scroll it
    });
    if (cfg.greeting) u.log.append(h("div", { class: "fd-msg fd-msg--bot fd-greeting" }, bubble(cfg.greeting)));
    u.typing = h("div", { class: "fd-typing", hidden: true },
      h("span", { class: "fd-dots", "aria-hidden": "true" }, h("span"), h("span"), h("span")),
      h("span", {}, "Typing…"));
    // Always in the DOM (and usually empty): a live region must exist before its
    // content changes for screen readers to announce the change.
    u.notices = h("div", { class: "fd-notices", role: "status" });
    u.input = h("textarea", {
      id: "fd-input-" + uid, class: "fd-input", "data-testid": "fd-input", rows: "1", placeholder: "Type a message…",
      enterkeyhint: "send", autocomplete: "off", onkeydown: onInputKey, oninput: onInput,
    });
    u.send = h("button", { type: "submit", class: "fd-send", "data-testid": "fd-send" }, "Send");
    const form = h("form", { class: "fd-composer", onsubmit: onSubmit },
      h("label", { class: "fd-sr-only", for: u.input.id }, "Your message"), u.input, u.send);
    u.panel = h("div", {
      id: "fd-panel-" + uid, class: "fd-panel", role: "dialog", "aria-label": cfg.title,
      "data-testid": "fd-panel", hidden: true,
    }, header, u.log, u.typing, u.notices, form);
    u.root = h("div", { class: `fd-widget fd-widget--${cfg.position} fd-conn-connecting`, onkeydown: onRootKey },
      u.panel, u.launcher);
    // Hidden until widget.css arrives, so the host never flashes an unstyled widget.
    u.root.style.visibility = "hidden";
    return u;
  }

  function loadStylesheet() {
    const reveal = () => { ui.root.style.visibility = ""; };
    let href = "widget.css";
    try { href = new URL("widget.css", cfg.src).href; } catch (_) { /* relative to the page */ }
    document.head.append(h("link", { rel: "stylesheet", href, onload: reveal, onerror: reveal }));
    setTimeout(reveal, 3000); // a stalled stylesheet must not hide the chat for good
  }

  // ---- rendering messages -------------------------------------------------
  const URL_RE = /\bhttps?:\/\/[^\s<>"]+/gi;

  /** A URL as typed in prose loses trailing punctuation and unbalanced closers. */
  function trimUrl(url) {
    for (;;) {
      const last = url.slice(-1);
      if (".,;:!?'\"".includes(last)) url = url.slice(0, -1);
      else if (last === ")" && url.split("(").length < url.split(")").length) url = url.slice(0, -1);
      else if ((last === "]" || last === "}") && !url.includes(last === "]" ? "[" : "{")) url = url.slice(0, -1);
      else return url;
    }
  }

  function safeHref(text) {
    try { const u = new URL(text); return /^https?:$/.test(u.protocol) ? u.href : null; } catch (_) { return null; }
  }

  /** Text with http(s) links as <a> nodes; line breaks are kept by CSS (pre-wrap). */
  function appendLinkified(parent, text) {
    let last = 0;
    for (const match of text.matchAll(URL_RE)) {
      const url = trimUrl(match[0]);
      const href = safeHref(url);
      if (!href) continue;
      if (match.index > last) parent.append(text.slice(last, match.index));
      parent.append(h("a", { href, target: "_blank", rel: "noopener noreferrer" }, url));
      last = match.index + url.length;
    }
    if (last < text.length) parent.append(text.slice(last));
  }

  function bubble(text) { const el = h("div", { class: "fd-bubble" }); appendLinkified(el, text); return el; }

  function timeEl(iso) {
    let d = new Date(iso);
    if (Number.isNaN(d.getTime())) d = new Date();
    const today = d.toDateString() === new Date().toDateString();
    return h("time", { class: "fd-time", datetime: d.toISOString(), title: fullFmt.format(d) },
      (today ? timeFmt : dateTimeFmt).format(d));
  }

  const SENDER_LABEL = { customer: "You", bot: "Bot", agent: "Agent" };

  function senderOf(m) {
    if (m.direction === "in" || m.sender === "customer") return "customer";
    return m.sender === "agent" ? "agent" : "bot";
  }

  function renderMessage(rec) {
    rec.stateEl = h("span", { class: "fd-state" });
    const meta = h("div", { class: "fd-meta" },
      rec.sender === "customer" ? null : h("span", { class: "fd-who" }, SENDER_LABEL[rec.sender]),
      timeEl(rec.at), rec.stateEl);
    rec.el = h("div", { class: `fd-msg fd-msg--${rec.sender}`, "data-testid": "fd-message", "data-sender": rec.sender },
      h("span", { class: "fd-sr-only" }, SENDER_LABEL[rec.sender] + ": "), bubble(rec.text), meta);
    renderStatus(rec);
  }

  /** data-seq, and for the customer's own messages: sending / sent / failed (with Retry). */
  function renderStatus(rec) {
    rec.el.setAttribute("data-seq", rec.seq || "");
    if (rec.sender !== "customer") return;
    rec.el.classList.toggle("fd-msg--sending", rec.status === "sending");
    rec.el.classList.toggle("fd-msg--failed", rec.status === "failed");
    const parts = {
      sending: ["Sending…"],
      sent: [h("span", { "aria-hidden": "true" }, "✓"), h("span", { class: "fd-sr-only" }, "Sent")],
      failed: [h("span", { class: "fd-failed" }, "Not sent"),
        h("button", { type: "button", class: "fd-retry", onclick: () => retry(rec) }, "Retry")],
    };
    rec.stateEl.replaceChildren(...(parts[rec.status] || []));
  }

  /**
   * Which record a server message refers to. The server may report a customer
   * message's id scoped to the visitor ("<contact>:<client id>"), so the part after
   * the last ":" is tried too.
   */
  function findKnown(m) {
    if (isSeq(m.seq) && bySeq.has(m.seq)) return bySeq.get(m.seq);
    if (typeof m.id !== "string" || !m.id) return null;
    if (byId.has(m.id)) return byId.get(m.id);
    const own = byId.get(m.id.slice(m.id.lastIndexOf(":") + 1));
    return own && own.local ? own : null;
  }

  /** Render a message once (deduplicated by id and seq); returns its record. */
  function addMessage(m) {
    const known = findKnown(m);
    if (known && isSeq(m.seq) && !known.seq) confirm(known, m.seq); // an echo that beat the ack
    if (known) return known;
    const rec = {
      id: typeof m.id === "string" ? m.id : "", seq: isSeq(m.seq) ? m.seq : 0,
      sender: senderOf(m), text: String(m.text == null ? "" : m.text), at: m.at,
      choices: Array.isArray(m.choices) ? m.choices.filter((c) => typeof c === "string" && c) : [],
      status: m.status || "sent", local: !!m.local, tries: 0, el: null, stateEl: null,
    };
    const stick = nearBottom() || rec.sender === "customer";
    renderMessage(rec);
    insertInOrder(rec);
    if (rec.id) byId.set(rec.id, rec);
    if (rec.seq) { bySeq.set(rec.seq, rec); noteSeq(rec.seq); }
    refreshChoices();
    if (rec.sender !== "customer") {
      hideTyping();
      if (!isOpen && !(rec.seq && rec.seq <= seenBefore)) { unread++; renderBadge(); }
    }
    if (stick) scrollToEnd();
    sendRead();
    return rec;
  }

  /**
   * Stored messages go in seq order, above anything still "sending" (those are not
   * stored yet, so they are newer); unsent local messages go last.
   */
  function insertInOrder(rec) {
    let i = rec.seq ? items.findIndex((it) => (it.seq && it.seq > rec.seq) || it.status === "sending") : -1;
    if (i < 0) i = items.length;
    ui.log.insertBefore(rec.el, i < items.length ? items[i].el : null); // null: append
    items.splice(i, 0, rec);
  }

  /** Only the latest message's choices are offered, and only if it is not ours. */
  function refreshChoices() {
    if (choicesEl) { choicesEl.remove(); choicesEl = null; }
    const last = items[items.length - 1];
    if (!last || last.sender === "customer" || !last.choices.length) return;
    choicesEl = h("div", { class: "fd-choices", role: "group", "aria-label": "Suggested replies" },
      ...last.choices.map((c) => h("button", { type: "button", class: "fd-choice", onclick: () => chooseReply(c) }, c)));
    last.el.append(choicesEl);
  }

  function chooseReply(text) {
    send(text);
    ui.input.focus(); // the clicked button is gone with the choices; keep focus in the panel
  }

  function noteSeq(seq) {
    if (seq <= maxSeq) return;
    maxSeq = seq;
    // Never move the stored value backwards: another tab may have rendered more.
    storage.set(KEY_SEQ, Math.max(maxSeq, Number(storage.get(KEY_SEQ)) || 0));
  }

  function nearBottom() { const l = ui.log; return l.scrollHeight - l.scrollTop - l.clientHeight < NEAR_BOTTOM_PX; }

  function scrollToEnd() { ui.log.scrollTop = ui.log.scrollHeight; }
  function renderBadge() {
    ui.badge.hidden = unread === 0;
    ui.badge.textContent = unread > 9 ? "9+" : String(unread);
  }

  function showNotice(text) {
    clearTimeout(noticeTimer);
    ui.notices.replaceChildren(h("div", { class: "fd-notice" },
      h("span", {}, text),
      h("button", { type: "button", class: "fd-notice-close", "aria-label": "Dismiss", onclick: clearNotice }, "×")));
    noticeTimer = setTimeout(clearNotice, NOTICE_MS);
  }
  function clearNotice() { clearTimeout(noticeTimer); ui.notices.replaceChildren(); }

  function showTyping() {
    ui.typing.hidden = false;
    clearTimeout(typingShownTimer);
    typingShownTimer = setTimeout(hideTyping, TYPING_SHOWN_MS);
  }
  function hideTyping() { clearTimeout(typingShownTimer); ui.typing.hidden = true; }

  // ---- connection -----------------------------------------------------------
  function socketUrl() {
    const u = new URL(cfg.server + "/ws/chat", location.href);
    u.protocol = /^(https|wss):$/.test(u.protocol) ? "wss:" : "ws:";
    const params = { visitor: storage.get(KEY_VISITOR), since: maxSeq || "", user: cfg.userId, hash: cfg.identityHash, name: cfg.name };
    for (const [k, v] of Object.entries(params)) if (v) u.searchParams.set(k, v);
    return u.href;
  }

  function connect() {
    clearTimeout(retryTimer);
    retryTimer = 0;
    if (ws) return; // already open or opening
    if (navigator.onLine === false) return setConn("offline"); // the `online` event resumes
    setConn("connecting");
    let sock;
    try { sock = new WebSocket(socketUrl()); } catch (_) { return scheduleReconnect(); } // e.g. a file:// page
    ws = sock;
    welcomed = false;
    sentOnThisSocket = new Set();
    sock.onopen = () => { stableTimer = setTimeout(() => { attempts = 0; }, STABLE_AFTER_MS); };
    sock.onmessage = (ev) => { if (sock === ws) onFrame(ev.data); };
    sock.onerror = () => { /* always followed by close, which reconnects */ };
    sock.onclose = () => {
      if (sock !== ws) return;
      ws = null;
      welcomed = typingOn = false;
      clearTimeout(stableTimer);
      clearTimeout(historyTimer);
      hideTyping();
      scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    if (navigator.onLine === false) return setConn("offline");
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempts);
    attempts = Math.min(attempts + 1, 16);
    // "Equal jitter": half fixed, half random, so the tabs a server restart
    // dropped come back spread out, and never all at once.
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    retryAt = Date.now() + delay;
    retryTimer = setTimeout(connect, delay);
    setConn("offline");
  }

  /** Skip the wait (network back, tab visible again); no-op while a socket exists. */
  function reconnectNow() { if (!ws) connect(); }

  function setConn(state) {
    conn = state;
    ui.root.classList.remove("fd-conn-online", "fd-conn-connecting", "fd-conn-offline");
    ui.root.classList.add("fd-conn-" + state);
    ui.statusText.textContent = { online: "Online", connecting: "Connecting…", offline: "Offline" }[state];
    clearInterval(countdownTimer);
    renderCountdown();
    if (state === "offline" && retryTimer) countdownTimer = setInterval(renderCountdown, 1000);
  }

  function renderCountdown() {
    let detail = "";
    if (conn === "offline") {
      if (retryTimer) detail = ` — reconnecting in ${Math.max(1, Math.ceil((retryAt - Date.now()) / 1000))} s`;
      else if (navigator.onLine === false) detail = " — waiting for the network";
    }
    ui.statusDetail.textContent = detail;
  }

  function isReady() { return !!ws && ws.readyState === WebSocket.OPEN && welcomed && !awaitingHistory; }

  function sendFrame(frame) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }

  // ---- frames from the server -----------------------------------------------
  function onFrame(raw) {
    let f;
    try { f = JSON.parse(raw); } catch (_) { return; }
    if (!f || typeof f !== "object") return;
    switch (f.type) {
      case "welcome": return onWelcome(f);
      case "history": return onHistory(f);
      case "message": return void addMessage(f);
      case "ack": return onAck(f);
      case "typing": return f.state ? showTyping() : hideTyping();
      case "error": return onError(f);
      default: return; // unknown types are ignored, so the server can add new ones
    }
  }

  function onWelcome(f) {
    const previous = storage.get(KEY_VISITOR);
    if (typeof f.visitor === "string" && f.visitor) {
      // A different token means a different visitor (e.g. the old one was rejected):
      // its seqs are not ours, so start counting afresh.
      if (previous && previous !== f.visitor) resetSeqs();
      storage.set(KEY_VISITOR, f.visitor);
    }
    welcomed = true;
    // Queued messages wait for `history`: it may show some already arrived before
    // the connection dropped (an ack that got lost), and those are not resent.
    awaitingHistory = true;
    historyTimer = setTimeout(historyDone, HISTORY_WAIT_MS);
    setConn("online");
  }

  function resetSeqs() {
    maxSeq = lastReadSent = 0;
    bySeq.clear();
    storage.set(KEY_SEQ, 0);
  }

  function onHistory(f) {
    const list = (Array.isArray(f.messages) ? f.messages : []).filter((m) => m && typeof m === "object");
    list.sort((a, b) => (a.seq || 0) - (b.seq || 0));
    list.forEach(addMessage);
    historyDone();
  }

  function historyDone() {
    clearTimeout(historyTimer);
    awaitingHistory = false;
    flushOutbox();
    sendRead();
  }

  function onAck(f) {
    const rec = typeof f.id === "string" ? byId.get(f.id) : null;
    if (rec && isSeq(f.seq)) confirm(rec, f.seq);
  }

  /**
   * The server stored one of our messages under `seq`. A reply to it can arrive
   * before this acknowledgement (the server sends replies as soon as they are
   * made) and was then placed above our message, still "sending": the message
   * moves to its place in seq order.
   */
  function confirm(rec, seq) {
    rec.seq = seq;
    rec.status = "sent";
    bySeq.set(seq, rec);
    dropFromOutbox(rec.id);
    noteSeq(seq);
    renderStatus(rec);
    const at = items.indexOf(rec);
    if (at >= 0) {
      items.splice(at, 1);
      insertInOrder(rec);
    }
  }

  function onError(f) {
    hideTyping(); // nobody is preparing a reply to a message that did not go through
    showNotice(typeof f.message === "string" && f.message ? f.message : "Something went wrong.");
    const rec = typeof f.id === "string" ? byId.get(f.id) : null;
    if (rec && rec.status !== "sent") fail(rec);
  }

  function fail(rec) {
    rec.status = "failed";
    dropFromOutbox(rec.id);
    renderStatus(rec);
  }

  // ---- sending --------------------------------------------------------------
  function send(text) {
    const body = String(text == null ? "" : text).trim();
    if (!body) return null;
    stopTyping();
    const rec = addMessage({ id: newId(), direction: "in", text: body, at: new Date().toISOString(), status: "sending", local: true });
    outbox.push(rec.id);
    flushOutbox();
    return rec.id;
  }

  /** Resend with the same client id, so the server can tell it is not a new message. */
  function retry(rec) {
    rec.status = "sending";
    rec.tries = 0;
    renderStatus(rec);
    sentOnThisSocket.delete(rec.id);
    if (!outbox.includes(rec.id)) outbox.push(rec.id);
    flushOutbox();
  }

  /** Write every queued message not yet written to this socket, in order. */
  function flushOutbox() {
    if (!isReady()) return;
    for (const id of outbox.slice()) {
      const rec = byId.get(id);
      if (!rec || sentOnThisSocket.has(id)) continue;
      // A message whose every send ends the connection must not loop forever.
      if (rec.tries >= MAX_TRIES) { fail(rec); showNotice("A message could not be sent."); continue; }
      if (sendFrame({ type: "message", id, text: rec.text })) { sentOnThisSocket.add(id); rec.tries++; }
    }
  }

  function dropFromOutbox(id) { const i = outbox.indexOf(id); if (i >= 0) outbox.splice(i, 1); }

  function sendRead() {
    if (!isOpen || document.visibilityState !== "visible" || !isReady()) return;
    if (maxSeq > lastReadSent && sendFrame({ type: "read", seq: maxSeq })) lastReadSent = maxSeq;
  }

  function noteTyping() {
    const now = Date.now();
    if (now - typingSentAt >= TYPING_THROTTLE_MS && isReady() && sendFrame({ type: "typing", state: true })) {
      typingSentAt = now;
      typingOn = true;
    }
    clearTimeout(typingIdleTimer);
    typingIdleTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
  }

  function stopTyping() {
    clearTimeout(typingIdleTimer);
    if (typingOn) sendFrame({ type: "typing", state: false });
    typingOn = false;
  }

  // ---- user interface events --------------------------------------------------
  function onSubmit(ev) {
    ev.preventDefault();
    if (send(ui.input.value)) { ui.input.value = ""; autosize(); }
    ui.input.focus();
  }

  function onInputKey(ev) {
    // Enter sends, Shift+Enter is a newline. While an IME is composing (Chinese,
    // Japanese...), Enter confirms the composition and must not send.
    if (ev.key !== "Enter" || ev.shiftKey || ev.isComposing || ev.keyCode === 229) return;
    ev.preventDefault();
    ui.input.form.requestSubmit ? ui.input.form.requestSubmit() : onSubmit(ev);
  }

  function onInput() {
    autosize();
    ui.input.value.trim() ? noteTyping() : stopTyping();
  }

  /** Grow the textarea with its content (CSS caps it with max-height). */
  function autosize() {
    ui.input.style.height = "auto";
    ui.input.style.height = ui.input.scrollHeight + "px";
  }

  function onRootKey(ev) {
    if (!isOpen) return;
    if (ev.key === "Tab") return wrapFocus(ev);
    if (ev.key !== "Escape") return;
    ev.stopPropagation();
    close();
    ui.launcher.focus();
  }

  /** Full-screen on a phone, the panel hides the page: Tab cycles inside it instead. */
  function wrapFocus(ev) {
    if (!FULL_SCREEN.matches) return;
    const all = [...ui.panel.querySelectorAll("button, textarea, a[href], [tabindex='0']")].filter((el) => !el.disabled);
    const first = all[0], last = all[all.length - 1];
    if (ev.shiftKey && document.activeElement === first) { ev.preventDefault(); last.focus(); }
    else if (!ev.shiftKey && document.activeElement === last) { ev.preventDefault(); first.focus(); }
  }

  function setOpen(flag) {
    isOpen = flag;
    ui.panel.hidden = !flag;
    ui.root.classList.toggle("fd-open", flag);
    ui.launcher.setAttribute("aria-expanded", String(flag));
    ui.launcher.setAttribute("aria-label", flag ? "Close chat" : "Open chat");
  }

  function open(opts) {
    if (!ui || isOpen) return;
    setOpen(true);
    unread = 0;
    renderBadge();
    scrollToEnd();
    if (!opts || opts.focus !== false) ui.input.focus();
    sendRead();
  }

  function close() {
    if (!ui || !isOpen) return;
    const hadFocus = ui.panel.contains(document.activeElement);
    setOpen(false);
    if (hadFocus) ui.launcher.focus(); // focus must not vanish with the panel
  }

  function onVisibility() {
    if (document.visibilityState === "visible") { reconnectNow(); sendRead(); }
  }

  function onOnline() {
    attempts = 0; // a new network: start the backoff from the bottom
    reconnectNow();
  }

  /** Don't hammer a network that isn't there: drop the pending retry; `online` resumes. */
  function onOffline() {
    if (!ws) { clearTimeout(retryTimer); retryTimer = 0; setConn("offline"); }
  }

  // ---- start ----------------------------------------------------------------------
  function init() {
    ui = buildUI();
    loadStylesheet();
    document.body.append(ui.root);
    window.addEventListener("online", onOnline);
    window.addEventListener("offline", onOffline);
    document.addEventListener("visibilitychange", onVisibility);
    if (cfg.open) open({ focus: false }); // never steal focus from the host page on load
    connect();
  }

  window.FlowdeskWidget = Object.freeze({
    open: () => open(),
    close: () => close(),
    send: (text) => (ui ? send(text) : null),
    state: () => ({ connection: conn, open: isOpen, messages: items.length }),
  });

  if (document.body) init();
  else document.addEventListener("DOMContentLoaded", init, { once: true });
})();
