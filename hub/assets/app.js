// Shared by every page: the API, the live socket, formatting. No framework, no CDN.
"use strict";
const cc = {};
cc.api = async (path, opts = {}) => {
  const r = await fetch(path, Object.assign({ credentials: "same-origin", headers: { "Content-Type": "application/json" } }, opts));
  if (r.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search); throw new Error("not signed in"); }
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || ("HTTP " + r.status));
  return body;
};
cc.post = (path, data) => cc.api(path, { method: "POST", body: JSON.stringify(data) });
cc.el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "onclick") e.addEventListener("click", v); else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(k == null ? "" : String(k)));
  return e;
};
cc.mmss = (ms) => { if (ms == null) return "—"; const s = Math.floor(ms / 1000); return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0"); };
cc.num = (x, d = 0) => (x == null ? "—" : Number(x).toFixed(d));
cc.time = (ms) => new Date(ms).toLocaleTimeString();
cc.stateZh = { idle: "空闲 idle", in_call: "通话中 in call", on_hold: "保持 on hold", capture_lost: "采集中断 capture lost", offline: "离线 offline" };
cc.q = (name) => new URLSearchParams(location.search).get(name);
cc.nav = async (here) => {
  const me = await cc.api("/api/me");
  const links = [["/wallboard", "坐席墙 Wallboard"], ["/alerts", "告警 Alerts"], ["/search", "通话检索 Search"]];
  if (me.role === "admin") links.push(["/audit", "审计 Audit"]);
  const nav = cc.el("nav", {}, ...links.map(([h, t]) => cc.el("a", { href: h, class: h === here ? "on" : "" }, t)),
    cc.el("span", { class: "me" }, me.name + " (" + me.role + (me.teams.length ? ": " + me.teams.join(", ") : "") + ")"),
    cc.el("button", { onclick: async () => { await cc.post("/api/logout", {}); location.href = "/login"; } }, "退出 Log out"));
  document.body.prepend(nav);
  return me;
};
// The live socket: snapshot, tiles, alerts, transcripts; reconnects by itself.
cc.live = (onMsg) => {
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/ui";
  const open = () => {
    const ws = new WebSocket(url);
    ws.onmessage = (e) => { try { onMsg(JSON.parse(e.data)); } catch (err) { console.error(err); } };
    ws.onclose = () => setTimeout(open, 1000);
  };
  open();
};
cc.alertLine = (a, onAccept) => {
  const help = a.kind === "help";
  const w = a.warning || {};
  const sev = help ? "help" : w.severity;
  const text = help ? ("求助 help: " + (a.text || "")) : (w.message_zh + (w.message_en ? " — " + w.message_en : ""));
  const div = cc.el("div", { class: "alert", "data-rule": help ? "help" : w.rule, "data-sev": sev },
    cc.el("span", { class: "sev-" + sev }, help ? "HELP" : (w.severity || "").toUpperCase()), " ",
    cc.el("b", {}, a.agent), " ", text, cc.el("br"),
    cc.el("small", {}, cc.time(a.at_ms) + (a.call ? " · call " + a.call : "") + (help ? "" : " · " + w.rule)));
  if (help && onAccept) div.append(" ", cc.el("button", { onclick: (e) => { e.stopPropagation(); onAccept(a.agent); } }, "接受 Accept"));
  div.addEventListener("click", () => { if (a.call) location.href = "/call?agent=" + encodeURIComponent(a.agent) + "&call=" + encodeURIComponent(a.call); });
  return div;
};
cc.acceptHelp = async (agent) => { try { await cc.post("/api/help/accept", { agent }); } catch (e) { alert(e.message); } };
