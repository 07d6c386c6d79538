"use strict";
async function search() {
  const f = new FormData(document.getElementById("f")); const p = new URLSearchParams();
  for (const [k, v] of f) {
    if (!v) continue;
    if (k === "from") p.set("from_ms", Date.parse(v)); else if (k === "to") p.set("to_ms", Date.parse(v) + 86400000); else p.set(k, v);
  }
  const r = await cc.api("/api/calls?" + p);
  document.getElementById("rows").replaceChildren(...r.calls.map((c) => {
    const tr = cc.el("tr", {}, cc.el("td", {}, c.started_ms ? new Date(c.started_ms).toLocaleString() : "—"), cc.el("td", {}, c.agent), cc.el("td", {}, c.team || ""),
      cc.el("td", {}, cc.num(c.score)), cc.el("td", {}, c.rules_broken.join(", ")), cc.el("td", {}, c.transcript));
    tr.style.cursor = "pointer"; tr.onclick = () => { location.href = "/call?agent=" + encodeURIComponent(c.agent) + "&call=" + encodeURIComponent(c.call); };
    return tr;
  }));
}
document.getElementById("f").addEventListener("submit", (e) => { e.preventDefault(); search().catch((x) => alert(x.message)); });
(async () => { await cc.nav("/search"); await search(); })();
