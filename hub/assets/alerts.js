"use strict";
const RULES = ["rate","volume","gradual","silent_caller","weak_caller","noisy_caller","hold","dead_air","interrupt","greeting","forbidden","polite","closing","abusive"];
for (const r of RULES) document.getElementById("rule").append(cc.el("option", { value: r }, r));
function visible(el) {
  const r = document.getElementById("rule").value, s = document.getElementById("sev").value;
  return (!r || el.dataset.rule === r) && (!s || el.dataset.sev === s);
}
function filter() { for (const el of document.getElementById("feed").children) el.style.display = visible(el) ? "" : "none"; }
document.getElementById("rule").onchange = filter; document.getElementById("sev").onchange = filter;
(async () => {
  await cc.nav("/alerts");
  const feed = document.getElementById("feed");
  const initial = await cc.api("/api/alerts?limit=300");
  for (const a of initial.alerts) {
    const b = a.body; const help = b.type === "help_request";
    feed.append(cc.alertLine({ kind: help ? "help" : "warning", agent: a.agent, call: b.call, at_ms: a.at_ms, warning: b.warning, text: b.text }, cc.acceptHelp));
  }
  filter();
  cc.live((m) => {
    if (m.type === "alert" && (m.kind === "help" || m.warning.state === "raised")) {
      const el = cc.alertLine(m, cc.acceptHelp); if (!visible(el)) el.style.display = "none";
      feed.prepend(el); while (feed.children.length > 1000) feed.lastChild.remove();
    }
  });
})();
