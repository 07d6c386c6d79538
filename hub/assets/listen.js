// Listen-in: the call's audio from the hub's socket, played with Web Audio. A frame is
// "CCA1", u32 LE sample rate, then i16 LE samples interleaved (agent, caller). The lease lasts
// as long as the socket: closing the page or pressing stop ends it (and the hub records it).
"use strict";
const ccListen = { ws: null, ctx: null, next: 0, frames: 0 };
ccListen.play = (buf) => {
  const dv = new DataView(buf);
  if (buf.byteLength < 8 || dv.getUint32(0, false) !== 0x43434131) return;
  const rate = dv.getUint32(4, true), n = (buf.byteLength - 8) >> 2;
  if (!ccListen.ctx) ccListen.ctx = new AudioContext();
  const ctx = ccListen.ctx, ab = ctx.createBuffer(2, Math.max(n, 1), rate);
  const l = ab.getChannelData(0), r = ab.getChannelData(1);
  for (let i = 0; i < n; i++) { l[i] = dv.getInt16(8 + 4 * i, true) / 32768; r[i] = dv.getInt16(10 + 4 * i, true) / 32768; }
  const src = ctx.createBufferSource(); src.buffer = ab; src.connect(ctx.destination);
  ccListen.next = Math.max(ccListen.next, ctx.currentTime + 0.15); src.start(ccListen.next); ccListen.next += ab.duration;
  ccListen.frames++;
};
ccListen.toggle = (agent, button, state) => {
  if (ccListen.ws) { ccListen.ws.close(); return; }
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/listen/" + encodeURIComponent(agent);
  const ws = new WebSocket(url); ws.binaryType = "arraybuffer"; ccListen.ws = ws;
  button.textContent = "停止监听 Stop"; state.textContent = "连接中 connecting…";
  ws.onopen = () => { state.textContent = "监听中 listening"; };
  ws.onmessage = (e) => { if (e.data instanceof ArrayBuffer) ccListen.play(e.data); state.textContent = "监听中 listening · " + ccListen.frames + " frames"; };
  ws.onclose = () => { ccListen.ws = null; button.textContent = "监听 Listen"; state.textContent = "已停止 stopped"; };
};
