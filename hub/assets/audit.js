"use strict";
(async () => {
  await cc.nav("/audit");
  try {
    const r = await cc.api("/api/audit");
    document.getElementById("rows").replaceChildren(...r.audit.map((a) => cc.el("tr", {}, cc.el("td", {}, a.id), cc.el("td", {}, new Date(a.at_ms).toLocaleString()),
      cc.el("td", {}, a.actor), cc.el("td", {}, a.action), cc.el("td", {}, a.target || ""), cc.el("td", {}, a.detail || ""))));
  } catch (e) { document.querySelector("main").append(cc.el("p", { class: "err" }, e.message)); }
})();
