"use strict";
document.getElementById("f").addEventListener("submit", async (e) => {
  e.preventDefault();
  const err = document.getElementById("err"); err.textContent = "";
  try {
    const r = await fetch("/api/login", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name: document.getElementById("name").value, password: document.getElementById("password").value }) });
    const b = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(b.error || ("HTTP " + r.status));
    const next = cc.q("next"); location.href = next && next.startsWith("/") && !next.startsWith("//") ? next : "/wallboard";
  } catch (x) { err.textContent = x.message; }
});
