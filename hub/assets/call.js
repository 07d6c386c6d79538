"use strict";
const agent = cc.q("agent"), call = cc.q("call");
let startMs = null, lengthMs = 60000;
const marks = [];
function seg(s) {
  return cc.el("div", { class: "seg " + s.party }, cc.el("b", {}, (s.party === "agent" ? "坐席 agent" : "客户 caller") + " " + cc.mmss(s.start_ms) + " "), s.text);
}
function drawTimeline() {
  const tl = document.getElementById("timeline");
  const len = Math.max(lengthMs, ...marks.map((w) => w.t_ms + 1000));
  tl.replaceChildren(...marks.map((w) => {
    const m = cc.el("div", { class: "mark " + w.severity, title: cc.mmss(w.t_ms) + " " + w.message_zh });
    m.style.left = (100 * w.t_ms / len).toFixed(2) + "%";
    return m;
  }));
}
function addWarning(w) {
  if (w.state !== "raised") return;
  marks.push(w); drawTimeline();
  document.getElementById("warnings").append(cc.el("div", { class: "alert" }, cc.el("span", { class: "sev-" + w.severity }, w.severity.toUpperCase()), " " + cc.mmss(w.t_ms) + " ", w.message_zh, " — ", cc.el("i", {}, w.line)));
}
function showMeters(t) {
  if (!t) return;
  const m = t.meters || {};
  if (m.call_ms) lengthMs = Math.max(lengthMs, m.call_ms);
  document.getElementById("meters").replaceChildren(
    cc.el("span", { class: "state", id: "tileState" }, cc.stateZh[t.state] || t.state), " · ",
    "时长 " + cc.mmss(m.call_ms), " · 响度 " + cc.num((m.loudness_lufs || [])[0], 1) + " / " + cc.num((m.loudness_lufs || [])[1], 1) + " LUFS",
    " · 语速 " + cc.num((m.chars_per_minute || [])[0]) + " 字/分", " · 坐席占比 " + (m.agent_talk_ratio == null ? "—" : Math.round(m.agent_talk_ratio * 100) + "%"));
}
(async () => {
  await cc.nav("");
  document.getElementById("title").textContent = "坐席 " + agent + " · 通话 call " + call;
  try {
    const c = await cc.api("/api/calls/" + encodeURIComponent(agent) + "/" + encodeURIComponent(call));
    for (const e of c.events) {
      const b = e.body;
      if (b.type === "transcript") document.getElementById("transcript").append(seg(b.segment));
      if (b.type === "warning") addWarning(b.warning);
    }
    showMeters(c.tile);
  } catch (e) { document.getElementById("meters").textContent = e.message; }
  cc.live((m) => {
    if (m.type === "tile" && m.tile.agent === agent) showMeters(m.tile);
    if (m.type === "snapshot") showMeters(m.tiles.find((t) => t.agent === agent));
    if (m.agent !== agent || m.call !== call) return;
    if (m.type === "transcript") { const t = document.getElementById("transcript"); t.append(seg(m.segment)); t.scrollTop = t.scrollHeight; }
    if (m.type === "alert" && m.kind === "warning") addWarning(m.warning);
  });
  const send = async () => {
    const text = document.getElementById("whisper").value.trim(); if (!text) return;
    try { await cc.post("/api/whisper", { agent, text }); document.getElementById("sent").textContent = "已发送 sent " + cc.time(Date.now()); document.getElementById("whisper").value = ""; }
    catch (e) { document.getElementById("sent").textContent = e.message; }
  };
  document.getElementById("send").onclick = send;
  document.getElementById("whisper").addEventListener("keydown", (e) => { if (e.key === "Enter") send(); });
  document.getElementById("listen").onclick = () => ccListen.toggle(agent, document.getElementById("listen"), document.getElementById("listenState"));
})();
