"use strict";
const tiles = new Map();
let lastUpdate = 0;
function order(a, b) {
  return (b.rank - a.rank) || ((a.call_started_ms ?? 1e16) - (b.call_started_ms ?? 1e16)) || a.agent.localeCompare(b.agent);
}
function tileEl(t) {
  const m = t.meters || {};
  const lufs = (m.loudness_lufs || [])[0], cpm = (m.chars_per_minute || [])[0];
  const el = cc.el("div", { class: "tile u-" + t.urgency, "data-agent": t.agent, "data-state": t.state },
    cc.el("h3", {}, cc.el("span", {}, t.agent), cc.el("span", { class: "state" }, cc.stateZh[t.state] || t.state)),
    cc.el("div", { class: "state" }, (t.team || "") + (t.call ? " · call " + t.call : "")),
    cc.el("div", { class: "meters" },
      cc.el("span", {}, "通话 time"), cc.el("span", { class: "m-time" }, t.call ? cc.mmss(m.call_ms) : "—"),
      cc.el("span", {}, "响度 LUFS"), cc.el("span", { class: "m-lufs" }, cc.num(lufs, 1)),
      cc.el("span", {}, "语速 字/分"), cc.el("span", { class: "m-cpm" }, cc.num(cpm)),
      cc.el("span", {}, "坐席占比 talk"), cc.el("span", { class: "m-talk" }, m.agent_talk_ratio == null ? "—" : Math.round(m.agent_talk_ratio * 100) + "%")),
    cc.el("ul", { class: "warns" }, ...(t.warnings || []).map((w) => cc.el("li", { class: w.severity }, w.message_zh))));
  if (t.help) el.append(cc.el("div", { class: "help" }, "求助 " + t.help + " ", cc.el("button", { onclick: (e) => { e.stopPropagation(); cc.acceptHelp(t.agent); } }, "接受 Accept")));
  el.addEventListener("click", () => { if (t.call) location.href = "/call?agent=" + encodeURIComponent(t.agent) + "&call=" + encodeURIComponent(t.call); });
  return el;
}
function render() {
  const list = [...tiles.values()].sort(order);
  document.getElementById("tiles").replaceChildren(...list.map(tileEl));
  const inCall = list.filter((t) => t.state === "in_call" || t.state === "on_hold").length;
  document.getElementById("count").textContent = list.length + " 坐席 agents · " + inCall + " 通话中 in call";
  document.getElementById("updated").textContent = lastUpdate ? " · " + cc.time(lastUpdate) : "";
}
let pending = false;
function soon() { if (!pending) { pending = true; requestAnimationFrame(() => { pending = false; render(); }); } }
(async () => {
  await cc.nav("/wallboard");
  const feed = document.getElementById("feed");
  const initial = await cc.api("/api/alerts?limit=30");
  for (const a of initial.alerts) {
    const b = a.body; const help = b.type === "help_request";
    feed.append(cc.alertLine({ kind: help ? "help" : "warning", agent: a.agent, call: b.call, at_ms: a.at_ms, warning: b.warning, text: b.text }, cc.acceptHelp));
  }
  cc.live((m) => {
    lastUpdate = Date.now();
    if (m.type === "snapshot") { tiles.clear(); for (const t of m.tiles) tiles.set(t.agent, t); soon(); }
    else if (m.type === "tile") { tiles.set(m.tile.agent, m.tile); soon(); }
    else if (m.type === "alert" && (m.kind === "help" || m.warning.state === "raised")) {
      feed.prepend(cc.alertLine(m, cc.acceptHelp));
      while (feed.children.length > 200) feed.lastChild.remove();
    }
  });
})();
