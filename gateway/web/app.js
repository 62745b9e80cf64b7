// edgegate dashboard: a client of relay-control.v1 and sensor-stream.v1
// like any other (see docs/protocol.md). Hand-written, no framework, no
// build step; everything it needs is served by the gateway itself.
"use strict";

(() => {
  // ---- tunables ------------------------------------------------------------

  const BACKOFF_MIN_MS = 500; // first retry after a lost connection
  const BACKOFF_MAX_MS = 15000; // retries never wait longer than this
  const STABLE_MS = 10000; // a connection that lived this long resets the backoff
  const REQUEST_TIMEOUT_MS = 10000; // a command with no reply by then is reported
  const WINDOW_MS = 3 * 60 * 1000; // charts show the last 3 minutes
  const MIN_SPAN_MS = 10 * 1000; // a young history is stretched to fill, but not below this
  const BUCKETS = 720; // ring buffer size per sensor: one bucket per 250 ms
  const BUCKET_MS = WINDOW_MS / BUCKETS;
  const RENDER_MS = 500; // values and charts are redrawn at most this often
  const MAX_HZ = 20; // asked of the gateway: enough for the charts, light on phones
  const PULSE_CHOICES_MS = [250, 500, 1000, 2000, 5000, 10000, 30000, 60000];

  // ---- small helpers ---------------------------------------------------------

  const $ = (id) => document.getElementById(id);
  const SVG_NS = "http://www.w3.org/2000/svg";

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const c of children) if (c) e.append(c);
    return e;
  }

  function svg(tag, attrs) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  }

  function formatValue(v) {
    if (typeof v !== "number" || !Number.isFinite(v)) return "—";
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    const digits = a >= 1000 ? 0 : a >= 100 ? 1 : a >= 10 ? 2 : 3;
    return v.toFixed(digits);
  }

  function formatDuration(ms) {
    return ms < 1000 ? ms + " ms" : ms % 1000 === 0 ? ms / 1000 + " s" : (ms / 1000).toFixed(1) + " s";
  }

  function clockTime(ms) {
    const d = new Date(ms);
    const p = (n) => String(n).padStart(2, "0");
    return p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds());
  }

  const SOURCES = {
    client: "by a client",
    pulse: "pulse ended",
    interlock: "by its interlock",
    failsafe: "failsafe",
    startup: "at startup",
    uplink: "by the backend",
    device: "on the device",
    automation: "by an automation",
    guard: "by its max_on guard",
  };

  // ---- connections -----------------------------------------------------------

  // SignedOut is thrown by socketURL when the gateway says the user has no
  // (or no longer a) valid session; the page then stops reconnecting.
  class SignedOut extends Error {}

  // socketURL is the one place that builds the WebSocket URL: the gateway's
  // /ws beside this page, ws: or wss: as the page itself. When auth is on it
  // fetches a short-lived token for this browser's session from
  // auth/token (a fresh one for every connect) and adds ?token=<t>,
  // throwing SignedOut when the gateway answers 401.
  async function socketURL() {
    const u = new URL("ws", location.href);
    u.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    u.search = "";
    u.hash = "";
    const r = await fetch(new URL("auth/token", location.href), { cache: "no-store", credentials: "same-origin" });
    let body = {};
    try {
      body = await r.json();
    } catch (e) {
      body = {};
    }
    if (r.status === 401) throw new SignedOut(body.error || "signed out");
    if (!r.ok) throw new Error(body.error || "token request failed: " + r.status);
    if (body.auth && body.token) {
      u.search = "?token=" + encodeURIComponent(body.token);
      $("signout").hidden = false;
    }
    return u.href;
  }

  // With auth on, a signed-in page offers to sign out: the gateway ends the
  // session (POST auth/logout, its cookie stops working everywhere) and the
  // page reloads signed out.
  $("signout").addEventListener("click", async () => {
    $("signout").disabled = true;
    try {
      await fetch(new URL("auth/logout", location.href), { method: "POST", cache: "no-store", credentials: "same-origin" });
    } catch (e) {
      // The reload below shows whether the session is still alive.
    }
    location.replace(new URL("./", location.href).href);
  });

  // gatewayReachable asks /healthz, to tell a gateway that is down from one
  // that refuses the WebSocket (browsers do not show why a handshake failed).
  async function gatewayReachable() {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), 3000);
    try {
      const r = await fetch(new URL("healthz", location.href), { cache: "no-store", signal: ctl.signal });
      return r.ok;
    } catch (e) {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  // Channel is one WebSocket to the gateway for one subprotocol. It
  // reconnects by itself with capped exponential backoff and jitter.
  class Channel {
    constructor(protocol, statusEl, handlers) {
      this.protocol = protocol;
      this.statusEl = statusEl;
      this.handlers = handlers; // onMessage(msg), onOpen(), onDown()
      this.ws = null;
      this.connecting = false;
      this.attempt = 0;
      this.timer = 0;
      this.retryAt = 0;
      this.state = "connecting";
      this.detail = "";
      this.nextId = 1;
      this.pending = new Map(); // id → {resolve, timer}
    }

    setState(state, detail) {
      this.state = state;
      this.detail = detail || "";
      this.statusEl.dataset.conn = state;
      this.renderStatus();
      updateRetryButton();
    }

    renderStatus() {
      let text;
      switch (this.state) {
        case "open": text = "live"; break;
        case "connecting": text = "connecting…"; break;
        case "waiting": {
          const s = Math.max(0, Math.ceil((this.retryAt - Date.now()) / 1000));
          text = (this.detail ? this.detail + ", " : "") + "retry in " + s + " s";
          break;
        }
        case "signed-out": text = "signed out"; break;
        default: text = this.state;
      }
      const t = this.statusEl.querySelector(".conn-text");
      if (t.textContent !== text) t.textContent = text;
      this.statusEl.title = this.protocol + ": " + text;
    }

    async connect() {
      clearTimeout(this.timer);
      this.timer = 0;
      if (this.ws || this.connecting) return;
      this.connecting = true;
      this.setState("connecting");
      let url;
      try {
        url = await socketURL();
      } catch (e) {
        this.connecting = false;
        if (e instanceof SignedOut) this.signOut(e.message);
        else this.retryLater("no connection URL");
        return;
      }
      let ws;
      try {
        ws = new WebSocket(url, this.protocol);
      } catch (e) {
        this.connecting = false;
        this.retryLater("bad URL");
        return;
      }
      this.connecting = false;
      this.ws = ws;
      let openedAt = 0;
      ws.onopen = () => {
        openedAt = performance.now();
        if (ws.protocol !== this.protocol) {
          ws.close(1000, "subprotocol not agreed");
          return;
        }
        this.setState("open");
        this.handlers.onOpen();
      };
      ws.onmessage = (ev) => {
        if (typeof ev.data !== "string") return; // binary is never asked for
        let msg;
        try {
          msg = JSON.parse(ev.data);
        } catch (e) {
          showNotice("The gateway sent a message that is not JSON on " + this.protocol + "; it was ignored.");
          return;
        }
        if (msg === null || typeof msg !== "object") return;
        if (msg.id !== undefined && msg.event === undefined && this.pending.has(msg.id)) {
          const p = this.pending.get(msg.id);
          this.pending.delete(msg.id);
          clearTimeout(p.timer);
          p.resolve(msg);
          return;
        }
        this.handlers.onMessage(msg);
      };
      ws.onerror = () => {}; // the close event that follows says what we can know
      ws.onclose = async (ev) => {
        if (this.ws !== ws) return;
        this.ws = null;
        this.failPending("the connection to the gateway was lost before it answered");
        this.handlers.onDown();
        if (ev.code === 4401 || ev.code === 4403 || (ev.code === 1008 && /auth|token|sign/i.test(ev.reason))) {
          this.signOut(ev.reason);
          return;
        }
        if (openedAt && performance.now() - openedAt >= STABLE_MS) this.attempt = 0;
        if (!openedAt) {
          this.setState("connecting", "");
          const reachable = await gatewayReachable();
          if (this.ws || this.connecting) return; // "Reconnect now" was pressed meanwhile
          if (reachable) {
            // Up, yet it refused us: not a blip, so do not hurry.
            this.attempt = Math.max(this.attempt, 8);
            this.retryLater("refused by gateway");
            showNotice("The gateway is running but refuses this page's WebSocket: it may require signing in (401), " +
              "not allow this page's origin (403) or be at its connection limit (503). Its log says which.");
            return;
          }
          this.retryLater("gateway unreachable");
          return;
        }
        this.retryLater(ev.code === 1001 ? "gateway restarting" : "connection lost");
      };
    }

    retryLater(why) {
      if (this.state === "signed-out") return;
      const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempt);
      const delay = ceiling / 2 + Math.random() * (ceiling / 2);
      this.attempt = Math.min(this.attempt + 1, 16);
      this.retryAt = Date.now() + delay;
      this.setState("waiting", why);
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.connect(), delay);
    }

    // now reconnects at once (user action, or the browser came back online).
    now() {
      if (this.ws || this.connecting) return;
      this.attempt = 0;
      this.connect();
    }

    signOut(reason) {
      clearTimeout(this.timer);
      this.timer = 0;
      this.setState("signed-out", reason);
      showNotice("Signed out" + (reason ? " (" + reason + ")" : "") + ". Reload the page or press “Reconnect now” to sign in again.");
    }

    get isOpen() {
      return this.ws !== null && this.ws.readyState === WebSocket.OPEN && this.state === "open";
    }

    send(msg) {
      if (!this.isOpen) return false;
      this.ws.send(JSON.stringify(msg));
      return true;
    }

    // request sends msg with a fresh id and resolves with the reply.
    request(msg) {
      return new Promise((resolve) => {
        const id = this.nextId++;
        if (!this.send(Object.assign({ id }, msg))) {
          resolve({ ok: false, error: { code: "offline", message: "not connected to the gateway" } });
          return;
        }
        const timer = setTimeout(() => {
          this.pending.delete(id);
          resolve({ ok: false, error: { code: "timeout", message: "the gateway did not answer within " + REQUEST_TIMEOUT_MS / 1000 + " s" } });
        }, REQUEST_TIMEOUT_MS);
        this.pending.set(id, { resolve, timer });
      });
    }

    failPending(message) {
      for (const [id, p] of this.pending) {
        clearTimeout(p.timer);
        p.resolve({ id, ok: false, error: { code: "offline", message } });
      }
      this.pending.clear();
    }
  }

  // ---- page-wide state -------------------------------------------------------

  let gatewayID = "";
  let droppedTotal = 0;

  function showHello(msg) {
    if (typeof msg.gateway === "string" && msg.gateway !== gatewayID) {
      if (gatewayID !== "") {
        // A different gateway answers at this address: old charts are not its.
        for (const name of seriesByName.keys()) seriesByName.set(name, new Series());
        lastTs = 0;
      }
      gatewayID = msg.gateway;
      $("gateway-id").textContent = gatewayID;
      document.title = gatewayID + " · edgegate";
    }
    if (typeof msg.version === "string") {
      $("gateway-version").textContent = /^[0-9]/.test(msg.version) ? "v" + msg.version : msg.version;
    }
    if (typeof msg.role === "string") {
      const r = $("role");
      r.textContent = msg.role === "viewer" ? "read-only (viewer)" : msg.role;
      r.dataset.role = msg.role;
      r.hidden = false;
      readOnly = msg.role === "viewer";
      applyReadOnly();
    }
  }

  // A viewer may watch but not switch: its relay controls are disabled
  // rather than left to fail with "forbidden".
  let readOnly = false;
  function applyReadOnly() {
    for (const box of [$("relays"), $("automations")]) {
      box.classList.toggle("read-only", readOnly);
      for (const c of box.querySelectorAll("button, select")) c.disabled = readOnly;
    }
  }

  let noticeTimer = 0;
  function showNotice(text) {
    const n = $("notice");
    n.textContent = text;
    n.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => { n.hidden = true; }, 15000);
  }

  function updateRetryButton() {
    const b = $("retry");
    if (!b) return;
    b.hidden = !channels.some((c) => c.state === "waiting" || c.state === "signed-out");
  }

  // ---- relays ----------------------------------------------------------------

  const relays = new Map(); // name → {info, card, btn, text, meta, err, busy, pulse, pulseSel}
  const pulseChoice = new Map(); // name → pulse length last chosen, kept across reconnects
  const stateEvents = new Map(); // name → count of state events received

  const relayChannel = new Channel("relay-control.v1", $("conn-relays"), {
    onOpen() {},
    onDown() {
      for (const r of relays.values()) r.card.dataset.stale = "true";
      for (const a of automations.values()) a.row.dataset.stale = "true";
      $("relays-hint").textContent = relays.size === 0 ? "Not connected to the gateway." :
        "Not connected: showing the last confirmed states.";
    },
    onMessage(msg) {
      switch (msg.event) {
        case "hello":
          showHello(msg);
          buildRelays(Array.isArray(msg.relays) ? msg.relays : []);
          loadAutomations();
          break;
        case "state":
          stateEvents.set(msg.relay, (stateEvents.get(msg.relay) || 0) + 1);
          applyState(msg.relay, msg.state, msg.ts, msg.source, msg.automation);
          break;
        case "automation":
          if (msg.automation && typeof msg.automation.name === "string") applyAutomation(msg.automation);
          break;
        default:
          if (msg.ok === false && msg.error) {
            showNotice("Gateway error on relay-control: " + (msg.error.message || msg.error.code));
          }
      }
    },
  });

  function buildRelays(list) {
    const focused = document.activeElement && document.activeElement.closest("[data-relay-card]");
    const focusName = focused ? focused.dataset.relayCard : null;
    const focusPulse = document.activeElement && document.activeElement.classList.contains("pulse");
    const focusLen = document.activeElement && document.activeElement.classList.contains("pulse-len");
    const box = $("relays");
    box.replaceChildren();
    relays.clear();
    const groups = new Map();
    for (const info of list) {
      if (!info || typeof info.name !== "string") continue;
      const r = makeRelay(info);
      relays.set(info.name, r);
      if (typeof info.interlock === "string" && info.interlock !== "") {
        let g = groups.get(info.interlock);
        if (!g) {
          const body = el("div", { class: "group-body" });
          const section = el("section", { class: "group", "data-interlock": info.interlock, "aria-label": "Interlock group " + info.interlock },
            el("div", { class: "group-head" },
              el("h3", { text: "Interlock · " + info.interlock }),
              el("p", { class: "hint", text: "Only one can be on: switching one on turns the others off first." })),
            body);
          g = { section, body };
          groups.set(info.interlock, g);
          box.append(section);
        }
        g.body.append(r.card);
      } else {
        box.append(r.card);
      }
    }
    const n = relays.size;
    $("relays-hint").textContent = n === 0 ? "This gateway has no relays." :
      n + (n === 1 ? " relay" : " relays") + " · changes by anyone show up here at once";
    applyReadOnly();
    if (focusName && relays.has(focusName)) {
      const r = relays.get(focusName);
      (focusPulse && r.pulse ? r.pulse : focusLen && r.pulseSel ? r.pulseSel : r.btn).focus();
    }
  }

  function makeRelay(info) {
    const name = info.name;
    const text = el("span", { class: "switch-text" });
    const btn = el("button", { type: "button", class: "switch", "data-relay": name, "aria-label": name },
      el("span", { class: "track", "aria-hidden": "true" }, el("span", { class: "knob" })), text);
    const meta = el("p", { class: "relay-meta" });
    const err = el("p", { class: "relay-error", role: "alert", hidden: "" });
    const card = el("article", { class: "relay", "data-relay-card": name },
      el("div", { class: "relay-head" }, el("h3", { class: "relay-name", text: name }), btn),
      meta, err);
    const r = { info: Object.assign({}, info), card, btn, text, meta, err, busy: false, pulse: null, pulseSel: null };
    // hello and list name the source of the last change only when an
    // automation or a guard made it.
    if (typeof info.changed_by === "string") r.info.source = info.changed_by;
    btn.addEventListener("click", () => toggleRelay(r));
    const max = Number(info.max_pulse_ms);
    if (Number.isFinite(max) && max > 0) {
      const choices = PULSE_CHOICES_MS.filter((ms) => ms < max);
      choices.push(max);
      const sel = el("select", { class: "pulse-len", "aria-label": "Pulse length for " + name });
      const def = choices.includes(pulseChoice.get(name)) ? pulseChoice.get(name) :
        choices.includes(1000) ? 1000 : choices[choices.length - 1];
      for (const ms of choices) {
        const o = el("option", { value: String(ms), text: formatDuration(ms) });
        if (ms === def) o.selected = true;
        sel.append(o);
      }
      const pulse = el("button", { type: "button", class: "pulse", "data-pulse": name, "aria-label": "Pulse " + name, title: "Switch on, then off after the chosen time (at most " + formatDuration(max) + ")" }, "Pulse");
      pulse.addEventListener("click", () => pulseRelay(r, Number(sel.value)));
      sel.addEventListener("change", () => pulseChoice.set(name, Number(sel.value)));
      meta.after(el("div", { class: "relay-actions" }, el("div", { class: "pulse-box" }, pulse, sel)));
      r.pulse = pulse;
      r.pulseSel = sel;
      meta.dataset.maxPulse = String(max);
    }
    renderRelay(r);
    return r;
  }

  function renderRelay(r) {
    const on = r.info.state === "on";
    const state = on ? "on" : "off";
    r.btn.dataset.state = state;
    r.card.dataset.state = state;
    r.btn.setAttribute("aria-pressed", on ? "true" : "false");
    r.text.textContent = on ? "On" : "Off";
    let meta = r.info.driver ? r.info.driver : "";
    if (r.info.changed_at) {
      meta += (meta ? " · " : "") + "changed " + clockTime(r.info.changed_at);
      if (r.info.source === "automation" && r.info.automation) meta += " by automation " + r.info.automation;
      else if (r.info.source && SOURCES[r.info.source]) meta += " " + SOURCES[r.info.source];
    }
    r.meta.textContent = meta;
    r.card.dataset.changedBy = r.info.source === "automation" || r.info.source === "guard" ? r.info.source : "";
    delete r.card.dataset.stale;
  }

  function applyState(name, state, ts, source, automation) {
    const r = relays.get(name);
    if (!r || (state !== "on" && state !== "off")) return;
    const changed = r.info.state !== state;
    r.info.state = state;
    if (typeof ts === "number") r.info.changed_at = ts;
    if (typeof source === "string") {
      r.info.source = source;
      r.info.automation = typeof automation === "string" ? automation : "";
    }
    hideRelayError(r);
    renderRelay(r);
    if (changed) {
      r.card.classList.remove("flash");
      void r.card.offsetWidth; // restart the animation
      r.card.classList.add("flash");
    }
  }

  function showRelayError(r, error) {
    const code = error && error.code ? error.code : "error";
    const message = error && error.message ? error.message : "the command failed";
    r.err.textContent = message + " (" + code + ")";
    r.err.hidden = false;
    r.card.dataset.error = code;
  }

  function hideRelayError(r) {
    r.err.hidden = true;
    r.err.textContent = "";
    delete r.card.dataset.error;
  }

  async function command(r, msg) {
    if (r.busy) return;
    r.busy = true;
    r.card.setAttribute("aria-busy", "true");
    const eventsBefore = stateEvents.get(r.info.name) || 0;
    const reply = await relayChannel.request(msg);
    r.busy = false;
    r.card.removeAttribute("aria-busy");
    // The hello of a reconnect may have rebuilt the cards meanwhile.
    const cur = relays.get(r.info.name) || r;
    if (reply.ok === true) {
      hideRelayError(cur);
      // Only what the gateway confirmed is shown. State events are the
      // authority: one that arrived meanwhile may be newer than the reply
      // (another client's change), so the reply is used only without one.
      if ((stateEvents.get(cur.info.name) || 0) === eventsBefore) {
        applyState(cur.info.name, reply.state, reply.changed_at, undefined);
      }
    } else {
      showRelayError(cur, reply.error);
    }
  }

  function toggleRelay(r) {
    command(r, { op: "toggle", relay: r.info.name });
  }

  function pulseRelay(r, ms) {
    if (!Number.isFinite(ms) || ms <= 0) return;
    command(r, { op: "pulse", relay: r.info.name, ms });
  }

  // ---- automations -----------------------------------------------------------

  // The automations of the gateway (automations op, automation events):
  // name, kind, enabled, active, last fired, next run and error, with an
  // operator's switch to enable or disable each.
  const automations = new Map(); // name → {info, row, btn, state, meta, err, busy}
  const KINDS = { thermostat: "Thermostat", when: "Condition", schedule: "Schedule" };

  async function loadAutomations() {
    const reply = await relayChannel.request({ op: "automations" });
    const section = $("automations-section");
    if (reply.ok !== true || !Array.isArray(reply.automations)) {
      // An older gateway without automations says unknown_op: no panel.
      if (reply.error && reply.error.code === "unknown_op") section.hidden = true;
      return;
    }
    const box = $("automations");
    box.replaceChildren();
    automations.clear();
    for (const info of reply.automations) {
      if (!info || typeof info.name !== "string") continue;
      const a = makeAutomation(info);
      automations.set(info.name, a);
      box.append(a.row);
    }
    section.hidden = automations.size === 0;
    applyReadOnly();
  }

  function makeAutomation(info) {
    const name = info.name;
    const text = el("span", { class: "switch-text" });
    const btn = el("button", { type: "button", class: "switch", "data-automation-switch": name, "aria-label": "Enable " + name },
      el("span", { class: "track", "aria-hidden": "true" }, el("span", { class: "knob" })), text);
    const kind = el("span", { class: "kind" });
    const state = el("span", { class: "automation-state" });
    const meta = el("p", { class: "relay-meta automation-meta" });
    const err = el("p", { class: "relay-error automation-error", role: "alert", hidden: "" });
    const row = el("article", { class: "relay automation", "data-automation": name },
      el("div", { class: "relay-head" }, el("h3", { class: "relay-name", text: name }), btn),
      el("p", { class: "automation-line" }, kind, state), meta, err);
    const a = { info: Object.assign({}, info), row, btn, text, kind, state, meta, err, busy: false };
    btn.addEventListener("click", () => switchAutomation(a));
    renderAutomation(a);
    return a;
  }

  function renderAutomation(a) {
    const i = a.info;
    const enabled = i.enabled === true;
    a.btn.dataset.state = enabled ? "on" : "off";
    a.btn.setAttribute("aria-pressed", enabled ? "true" : "false");
    a.text.textContent = enabled ? "Enabled" : "Disabled";
    a.row.dataset.enabled = enabled ? "true" : "false";
    a.row.dataset.active = i.active === true ? "true" : "false";
    a.kind.textContent = KINDS[i.kind] || i.kind || "";
    a.state.textContent = !enabled ? "disabled" : i.active === true ? "active" : "idle";
    const parts = [];
    parts.push("last fired " + (typeof i.last_fired === "number" ? clockTime(i.last_fired) : "never"));
    if (typeof i.next === "number") parts.push("next " + clockTime(i.next));
    a.meta.textContent = parts.join(" · ");
    if (typeof i.error === "string" && i.error !== "") {
      a.err.textContent = i.error;
      a.err.hidden = false;
      a.row.dataset.error = "true";
    } else {
      a.err.hidden = true;
      a.err.textContent = "";
      delete a.row.dataset.error;
    }
    delete a.row.dataset.stale;
  }

  function applyAutomation(info) {
    const a = automations.get(info.name);
    if (!a) return;
    a.info = Object.assign({}, info);
    renderAutomation(a);
  }

  async function switchAutomation(a) {
    if (a.busy) return;
    a.busy = true;
    a.row.setAttribute("aria-busy", "true");
    const enable = a.info.enabled !== true;
    const reply = await relayChannel.request({ op: enable ? "enable" : "disable", automation: a.info.name });
    a.busy = false;
    a.row.removeAttribute("aria-busy");
    const cur = automations.get(a.info.name) || a;
    if (reply.ok === true) {
      cur.info.enabled = reply.enabled === true;
      renderAutomation(cur);
    } else {
      cur.err.textContent = (reply.error && reply.error.message ? reply.error.message : "the command failed") +
        " (" + (reply.error && reply.error.code ? reply.error.code : "error") + ")";
      cur.err.hidden = false;
    }
  }

  // ---- sensors ---------------------------------------------------------------

  // Series is a bounded history of one sensor: a ring of time buckets, each
  // holding the min, max, sum and count of the samples that fell into it.
  // Memory is fixed whatever the sample rate; peaks survive decimation.
  class Series {
    constructor() {
      this.t = new Float64Array(BUCKETS); // bucket number (ts / BUCKET_MS)
      this.min = new Float64Array(BUCKETS);
      this.max = new Float64Array(BUCKETS);
      this.sum = new Float64Array(BUCKETS);
      this.last = new Float64Array(BUCKETS);
      this.n = new Uint32Array(BUCKETS);
      this.len = 0;
      this.head = 0; // index of the newest bucket
    }

    add(ts, v) {
      const b = Math.floor(ts / BUCKET_MS);
      if (this.len > 0) {
        const last = this.t[this.head];
        if (b <= last) {
          if (b < last - BUCKETS) this.len = 0; // the gateway's clock jumped back: start over
          else {
            const i = this.head; // late or same bucket: fold into the newest
            this.min[i] = Math.min(this.min[i], v);
            this.max[i] = Math.max(this.max[i], v);
            this.sum[i] += v;
            this.last[i] = v;
            this.n[i] += 1;
            return;
          }
        }
      }
      this.head = this.len === 0 ? 0 : (this.head + 1) % BUCKETS;
      if (this.len < BUCKETS) this.len++;
      const i = this.head;
      this.t[i] = b;
      this.min[i] = v;
      this.max[i] = v;
      this.sum[i] = v;
      this.last[i] = v;
      this.n[i] = 1;
    }

    // oldest returns the start (ms) of the oldest bucket held.
    oldest() {
      if (this.len === 0) return NaN;
      return this.t[(this.head - this.len + 1 + BUCKETS) % BUCKETS] * BUCKET_MS;
    }

    // points returns at most maxPoints aggregated points with t ≥ from (ms),
    // oldest first: {t, min, max, mean, last, span}.
    points(from, maxPoints) {
      const count = this.countSince(from);
      const group = Math.max(1, Math.ceil(count / maxPoints));
      const out = [];
      for (let g = count - 1; g >= 0; g -= group) {
        let mn = Infinity, mx = -Infinity, s = 0, n = 0, t = 0, last = 0;
        for (let k = g; k > g - group && k >= 0; k--) {
          const i = (this.head - k + BUCKETS) % BUCKETS;
          mn = Math.min(mn, this.min[i]);
          mx = Math.max(mx, this.max[i]);
          s += this.sum[i];
          n += this.n[i];
          t = this.t[i];
          last = this.last[i];
        }
        out.push({ t: (t + 0.5) * BUCKET_MS, min: mn, max: mx, mean: s / n, last, span: group * BUCKET_MS });
      }
      return out;
    }

    // countSince returns how many of the newest buckets start at or after from (ms).
    countSince(from) {
      const fromB = Math.floor(from / BUCKET_MS);
      for (let k = 0; k < this.len; k++) {
        if (this.t[(this.head - k + BUCKETS) % BUCKETS] < fromB) return k;
      }
      return this.len;
    }

    // lastBefore returns the last value seen before from (ms), or undefined.
    lastBefore(from) {
      const k = this.countSince(from);
      if (k >= this.len) return undefined;
      return this.last[(this.head - k + BUCKETS) % BUCKETS];
    }
  }

  const seriesByName = new Map(); // sensor name → Series; survives reconnects
  const sensors = new Map(); // name → {info, card, value, num, unit, line, band, range, err, last}
  let lastTs = 0; // newest sample time seen (gateway clock, ms)
  let lastTsAt = 0; // performance.now() when it arrived
  let openSensor = null; // name shown in the chart dialog

  // gatewayNow estimates the gateway's clock, so charts scroll on even when
  // browser and gateway clocks disagree.
  function gatewayNow() {
    if (lastTs === 0) return Date.now();
    return lastTs + (performance.now() - lastTsAt);
  }

  const sensorChannel = new Channel("sensor-stream.v1", $("conn-sensors"), {
    onOpen() {},
    onDown() {
      for (const s of sensors.values()) s.card.dataset.stale = "true";
      $("sensors-hint").textContent = sensors.size === 0 ? "Not connected to the gateway." :
        "Not connected: charts resume when the gateway is back.";
    },
    onMessage(msg) {
      if (typeof msg.sensor === "string" && typeof msg.value === "number" && msg.event === undefined) {
        addSample(msg);
        return;
      }
      switch (msg.event) {
        case "hello":
          showHello(msg);
          buildSensors(Array.isArray(msg.sensors) ? msg.sensors : []);
          subscribe();
          break;
        case "sensor_error": {
          const s = sensors.get(msg.sensor);
          if (s) {
            s.error = typeof msg.message === "string" ? msg.message : "read failed";
            s.dirty = true;
          }
          break;
        }
        case "dropped":
          if (typeof msg.count === "number") droppedTotal += msg.count;
          updateFooter();
          break;
        default:
          if (msg.ok === false && msg.error) {
            showNotice("Gateway error on sensor-stream: " + (msg.error.message || msg.error.code));
          }
      }
    },
  });

  async function subscribe() {
    const reply = await sensorChannel.request({ op: "subscribe", sensors: ["*"], max_hz: MAX_HZ });
    if (reply.ok !== true && reply.error && reply.error.code !== "offline") {
      showNotice("Could not subscribe to the sensors: " + (reply.error.message || reply.error.code));
    }
  }

  function updateFooter() {
    const f = $("footer-text");
    let t = "Live over WebSocket: relay-control.v1 and sensor-stream.v1.";
    if (droppedTotal > 0) t += " " + droppedTotal + " samples skipped by the gateway to keep up (slow link).";
    f.textContent = t;
  }

  function buildSensors(list) {
    const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.sensorCard : undefined;
    const box = $("sensors");
    box.replaceChildren();
    sensors.clear();
    const names = new Set();
    for (const info of list) {
      if (!info || typeof info.name !== "string") continue;
      names.add(info.name);
      if (!seriesByName.has(info.name)) seriesByName.set(info.name, new Series());
      const s = makeSensor(info);
      sensors.set(info.name, s);
      box.append(s.card);
    }
    for (const name of seriesByName.keys()) if (!names.has(name)) seriesByName.delete(name);
    const n = sensors.size;
    $("sensors-hint").textContent = n === 0 ? "This gateway has no sensors." :
      n + (n === 1 ? " sensor" : " sensors") + " · last " + WINDOW_MS / 60000 + " minutes · select a chart to enlarge it";
    if (focused && sensors.has(focused)) sensors.get(focused).card.focus();
    if (openSensor && !sensors.has(openSensor)) $("chart-dialog").close();
    renderSensors(true);
  }

  function makeSensor(info) {
    const name = info.name;
    const unit = typeof info.unit === "string" ? info.unit : "";
    const num = el("span", { class: "num", text: "—" });
    const unitEl = el("span", { class: "unit", text: unit });
    const value = el("span", { class: "value", "data-sensor": name }, num, unit ? " " : null, unit ? unitEl : null);
    const spark = svg("svg", { class: "spark", viewBox: "0 0 300 60", preserveAspectRatio: "none", "aria-hidden": "true", "data-sparkline": name });
    const band = svg("path", { class: "band", d: "" });
    const line = svg("path", { class: "line", d: "", "vector-effect": "non-scaling-stroke" });
    spark.append(band, line);
    const range = el("span", { class: "range", text: "no samples yet" });
    const err = el("span", { class: "sensor-error", hidden: "" });
    const card = el("button", { type: "button", class: "sensor", "data-sensor-card": name, title: "Open the chart of " + name },
      el("span", { class: "sensor-head" }, el("span", { class: "sensor-name", text: name }),
        el("span", { class: "interval", text: info.interval_ms ? "every " + formatDuration(info.interval_ms) : "on change" })),
      value, spark, range, err);
    card.addEventListener("click", () => openChart(name));
    const intervalMs = typeof info.interval_ms === "number" ? info.interval_ms : 0;
    return { info: { name, unit, intervalMs }, card, value, num, line, band, range, err, last: null, error: "", dirty: true };
  }

  function addSample(msg) {
    const s = sensors.get(msg.sensor);
    if (!s || !Number.isFinite(msg.value)) return;
    const ts = typeof msg.ts === "number" ? msg.ts : gatewayNow();
    if (ts >= lastTs) {
      lastTs = ts;
      lastTsAt = performance.now();
    }
    seriesByName.get(msg.sensor).add(ts, msg.value);
    s.last = msg.value;
    s.error = "";
    s.dirty = true;
  }

  // drawSeries returns the SVG path data of a series' mean line and of its
  // min–max band, scaled into the box x0..x1 × y0..y1 (y grows downwards),
  // and the value range used. A sensor with an interval is drawn as a line
  // that breaks where samples are missing; an event-driven one (interval 0,
  // e.g. a door contact) as steps that hold the last value until now.
  function drawSeries(series, intervalMs, now, maxPoints, box, fixedRange) {
    const span = timeSpan(series, now);
    const from = now - span;
    let pts = series.points(from, maxPoints);
    const events = !(intervalMs > 0);
    if (events) {
      const held = series.lastBefore(from);
      if (held !== undefined) pts.unshift({ t: from, min: held, max: held, mean: held, last: held, span: 0 });
      if (pts.length > 0) {
        const v = pts[pts.length - 1].last;
        pts = pts.map((p) => Object.assign({}, p, { mean: p.last }));
        pts.push({ t: now, min: v, max: v, mean: v, last: v, span: 0 });
      }
    }
    if (pts.length === 0) return { line: "", band: "", lo: 0, hi: 0, pts, span };
    let lo = Infinity, hi = -Infinity;
    for (const p of pts) { lo = Math.min(lo, p.min); hi = Math.max(hi, p.max); }
    if (fixedRange) { lo = fixedRange[0]; hi = fixedRange[1]; }
    else if (hi - lo < 1e-9) { const pad = Math.abs(hi) * 0.05 || 1; lo -= pad; hi += pad; }
    else { const pad = (hi - lo) * 0.08; lo -= pad; hi += pad; }
    const x = (t) => (box.x0 + ((t - from) / span) * (box.x1 - box.x0)).toFixed(1);
    const y = (v) => (box.y1 - ((v - lo) / (hi - lo)) * (box.y1 - box.y0)).toFixed(1);
    if (events) {
      let line = "M" + x(pts[0].t) + " " + y(pts[0].mean);
      for (let i = 1; i < pts.length; i++) line += "H" + x(pts[i].t) + "V" + y(pts[i].mean);
      return { line, band: "", lo, hi, pts, span };
    }
    let line = "", band = "", seg = [];
    const flush = () => {
      if (seg.length === 0) return;
      if (seg.length === 1) line += "h0.01"; // a lone sample still shows, as a dot
      let d = "M" + seg.map((p) => x(p.t) + " " + y(p.max)).join("L");
      for (let i = seg.length - 1; i >= 0; i--) d += "L" + x(seg[i].t) + " " + y(seg[i].min);
      band += d + "Z";
      seg = [];
    };
    let prev = null;
    for (const p of pts) {
      // Samples further apart than this mean some are missing.
      const gap = prev && p.t - prev.t > Math.max(3 * p.span, 2.5 * intervalMs);
      if (gap) flush();
      line += (prev === null || gap ? "M" : "L") + x(p.t) + " " + y(p.mean);
      seg.push(p);
      prev = p;
    }
    flush();
    return { line, band, lo, hi, pts, span };
  }

  // timeSpan is the width of a chart's time axis: the chart window, or less
  // while the history is young, so a fresh page does not show a mostly empty
  // chart.
  function timeSpan(series, now) {
    const age = now - series.oldest();
    if (!(age < WINDOW_MS)) return WINDOW_MS;
    return Math.max(MIN_SPAN_MS, age);
  }

  function renderSensors(all) {
    const now = gatewayNow();
    for (const [name, s] of sensors) {
      const series = seriesByName.get(name);
      if (s.dirty || all) {
        s.num.textContent = formatValue(s.last);
        s.err.hidden = s.error === "";
        s.err.textContent = s.error ? "⚠ " + s.error : "";
        if (s.error) s.card.dataset.error = "true"; else delete s.card.dataset.error;
        if (s.last !== null) delete s.card.dataset.stale;
        s.dirty = false;
      }
      // Charts scroll with time even without new samples.
      const d = drawSeries(series, s.info.intervalMs, now, 150, { x0: 0, x1: 300, y0: 4, y1: 56 });
      s.line.setAttribute("d", d.line);
      s.band.setAttribute("d", d.band);
      if (d.pts.length > 0) {
        let mn = Infinity, mx = -Infinity;
        for (const p of d.pts) { mn = Math.min(mn, p.min); mx = Math.max(mx, p.max); }
        const u = s.info.unit ? " " + s.info.unit : "";
        s.range.textContent = "min " + formatValue(mn) + u + " · max " + formatValue(mx) + u;
      }
    }
    if (openSensor) renderChart();
  }

  // ---- the large chart -------------------------------------------------------

  // formatTick prints an axis value with as many decimals as the step needs.
  function formatTick(v, step) {
    let decimals = 0;
    while (decimals < 6 && Math.abs(step * 10 ** decimals - Math.round(step * 10 ** decimals)) > 1e-6 * 10 ** decimals) decimals++;
    return v.toFixed(decimals);
  }

  function niceTicks(lo, hi, count) {
    const span = hi - lo;
    if (!(span > 0)) return [lo];
    const raw = span / count;
    const mag = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    return out;
  }

  function openChart(name) {
    const dlg = $("chart-dialog");
    openSensor = name;
    $("chart-title").textContent = name;
    renderChart();
    if (!dlg.open) dlg.showModal();
  }

  function renderChart() {
    const s = sensors.get(openSensor);
    const chart = $("chart-large");
    if (!s) { chart.replaceChildren(); return; }
    const W = 800, H = 360, box = { x0: 64, x1: W - 20, y0: 30, y1: H - 40 };
    const now = gatewayNow();
    const first = drawSeries(seriesByName.get(openSensor), s.info.intervalMs, now, 400, box);
    chart.replaceChildren();
    const unit = s.info.unit;
    const grid = svg("g", { class: "grid" });
    const labels = svg("g", { class: "axis-labels" });
    let lo = first.lo, hi = first.hi, d = first;
    if (first.pts.length > 0) {
      // Widen the value range to whole ticks, so the axis starts and ends on a label.
      let dataLo = Infinity, dataHi = -Infinity;
      for (const p of first.pts) { dataLo = Math.min(dataLo, p.min); dataHi = Math.max(dataHi, p.max); }
      if (dataHi - dataLo < 1e-9) { const pad = Math.abs(dataHi) * 0.05 || 1; dataLo -= pad; dataHi += pad; }
      const ticks = niceTicks(dataLo, dataHi, 5);
      const step = ticks.length > 1 ? ticks[1] - ticks[0] : (dataHi - dataLo);
      lo = Math.floor(dataLo / step + 1e-9) * step;
      hi = Math.ceil(dataHi / step - 1e-9) * step;
      d = drawSeries(seriesByName.get(openSensor), s.info.intervalMs, now, 400, box, [lo, hi]);
      for (const v of niceTicks(lo, hi, 5)) {
        const y = box.y1 - ((v - lo) / (hi - lo)) * (box.y1 - box.y0);
        grid.append(svg("line", { x1: box.x0, x2: box.x1, y1: y, y2: y }));
        const t = svg("text", { x: box.x0 - 8, y: y + 4, "text-anchor": "end" });
        t.textContent = formatTick(v, step);
        labels.append(t);
      }
    }
    const span = d.span || WINDOW_MS;
    const stepMs = [5000, 10000, 15000, 30000, 60000].find((s) => span / s <= 7) || 60000;
    for (let t = Math.ceil((now - span) / stepMs) * stepMs; t <= now; t += stepMs) {
      const x = box.x0 + ((t - (now - span)) / span) * (box.x1 - box.x0);
      grid.append(svg("line", { x1: x, x2: x, y1: box.y0, y2: box.y1 }));
      const lbl = svg("text", { x, y: box.y1 + 20, "text-anchor": "middle" });
      lbl.textContent = clockTime(t);
      labels.append(lbl);
    }
    const axes = svg("path", { class: "axes", d: `M${box.x0} ${box.y0}V${box.y1}H${box.x1}` });
    const yTitle = svg("text", { class: "axis-title", x: box.x0 - 8, y: 14, "text-anchor": "end" });
    yTitle.textContent = unit || "value";
    const xTitle = svg("text", { class: "axis-title", x: box.x1, y: H - 4, "text-anchor": "end" });
    xTitle.textContent = "time (gateway clock)";
    chart.append(grid, svg("path", { class: "band", d: d.band }), svg("path", { class: "line", d: d.line }), axes, labels, yTitle, xTitle);
    if (d.pts.length === 0) {
      const t = svg("text", { class: "empty", x: W / 2, y: H / 2, "text-anchor": "middle" });
      t.textContent = "No samples in the last " + WINDOW_MS / 60000 + " minutes";
      chart.append(t);
    }
    let mn = Infinity, mx = -Infinity, sum = 0, n = 0;
    for (const p of d.pts) { mn = Math.min(mn, p.min); mx = Math.max(mx, p.max); sum += p.mean; n++; }
    const u = unit ? " " + unit : "";
    $("chart-stats").textContent = n === 0 ? (s.error ? "⚠ " + s.error : "Waiting for samples…") :
      "now " + formatValue(s.last) + u + " · min " + formatValue(mn) + u + " · max " + formatValue(mx) + u +
      " · mean " + formatValue(sum / n) + u + (s.error ? " · ⚠ " + s.error : "");
  }

  // ---- start -----------------------------------------------------------------

  const channels = [relayChannel, sensorChannel];

  $("chart-close").addEventListener("click", () => $("chart-dialog").close());
  $("chart-dialog").addEventListener("close", () => { openSensor = null; });
  $("chart-dialog").addEventListener("click", (ev) => {
    if (ev.target === ev.currentTarget) ev.currentTarget.close(); // a click on the backdrop
  });
  $("retry").addEventListener("click", () => { for (const c of channels) c.now(); });
  window.addEventListener("online", () => { for (const c of channels) c.now(); });

  setInterval(() => {
    for (const c of channels) if (c.state === "waiting") c.renderStatus();
    renderSensors(false);
  }, RENDER_MS);

  for (const c of channels) c.connect();
})();
