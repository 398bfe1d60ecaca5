import { nodeMetaKeys } from '../../../shared/contract';

/** The status page itself: one self-contained HTML document that polls /api/state. */
export const page = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>gce-ilb-orchestrator sandbox</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #202124; background: #f8f9fa; }
  h1 { font-size: 1.3rem; margin: 0 0 .2rem; } h2 { font-size: 1.05rem; margin: 1.2rem 0 .4rem; }
  .muted { color: #5f6368; } .grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(600px, 1fr)); gap: 1rem; }
  .card { background: #fff; border: 1px solid #dadce0; border-radius: 8px; padding: .8rem 1rem; overflow-x: auto; }
  td { white-space: nowrap; } a { color: #1a73e8; }
  table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: .2rem .4rem; border-bottom: 1px solid #eee; font-size: 13px; }
  .ok { color: #188038; font-weight: 600; } .bad { color: #d93025; font-weight: 600; } .warn { color: #e37400; font-weight: 600; }
  code { font-size: 12px; }
  .charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(440px, 1fr)); gap: 1rem; }
  .chart h3 { font-size: 13px; margin: 0 0 .3rem; font-weight: 600; }
  .chart svg { width: 100%; height: auto; display: block; }
  .chart svg text { font: 11px system-ui, sans-serif; fill: #5f6368; }
  .legend { display: flex; flex-wrap: wrap; gap: .2rem .8rem; font-size: 12px; margin-top: .2rem; }
  .swatch { display: inline-block; width: 16px; height: 0; border-top: 3px solid; vertical-align: middle; margin-right: .25rem; }
  .swatch.dashed { border-top-style: dashed; }
</style>
</head>
<body>
<h1>gce-ilb-orchestrator sandbox</h1>
<div class="muted" id="updated">loading…</div>
<div id="links"></div>
<div id="scenario"></div>
<h2>Tiers</h2><div class="grid" id="tiers"></div>
<h2>Last 15 minutes</h2><div class="charts" id="charts"><div class="card muted">loading…</div></div>
<h2>scalingAlerts leases</h2><div class="card" id="leases"></div>
<h2>Consul</h2><div class="card" id="consul"></div>
<div class="grid">
  <div><h2>Recent events</h2><div class="card"><table id="events"></table></div></div>
  <div><h2>Orchestrator actions</h2><div class="card"><table id="actions"></table></div></div>
</div>
<script>
const esc = (s) => String(s ?? '').replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
const cls = (s) => (s === 'passing' || s === 'RUNNING' ? 'ok' : s === 'critical' || s === 'TERMINATED' ? 'bad' : 'warn');
function health(consul, name, id) {
  const node = consul.nodes.find((n) => n.name === name);
  if (!node) return '<span class="warn">not in catalog</span>';
  const nodeId = node.meta[${JSON.stringify(nodeMetaKeys.instanceId)}];
  const stale = !nodeId ? ' <span class="warn">(no metadata)</span>' : nodeId !== id ? ' <span class="bad">(stale id)</span>' : '';
  const checks = node.checks.map((c) => '<span class="' + cls(c.status) + '">' + esc(c.service || c.id) + ':' + esc(c.status) + '</span>').join(' ');
  return checks + stale;
}
function render(s) {
  document.getElementById('updated').textContent = 'updated ' + new Date(s.at).toLocaleTimeString() + ' · project ' + s.compute.project;
  document.getElementById('links').innerHTML = Object.entries(s.links).map(([k, v]) => esc(k) + ': <a href="' + esc(v) + '">' + esc(v) + '</a>').join(' · ');
  document.getElementById('scenario').innerHTML = s.scenario ? '<p class="warn">scenario running: ' + esc(s.scenario) + '</p>' : '';
  const autoscalers = s.compute.autoscalers;
  document.getElementById('tiers').innerHTML = s.compute.groups.map((g) => {
    const as = autoscalers.find((a) => a.target === g.selfLink);
    const p = as && as.autoscalingPolicy;
    const policy = p ? 'autoscaler ' + esc(as.name) + ': min ' + p.minNumReplicas + ', max ' + p.maxNumReplicas + ', mode ' + esc(p.mode) +
      (p.customMetricUtilizations || []).map((m) => ', target ' + m.utilizationTarget + ' of ' + esc(m.metric.split('/').slice(-2).join('/'))).join('') +
      ', recommended ' + esc(as.recommendedSize) + (as.statusDetails || []).map((d) => ' <span class="warn">' + esc(d.type) + '</span>').join('') : 'no autoscaler';
    const rows = g.managedInstances.map((m) => '<tr><td>' + esc(m.zone) + '</td><td>' + esc(m.name) + '</td><td><code>' + esc(m.id) + '</code></td><td>' + esc(m.networkIP) +
      '</td><td class="' + cls(m.instanceStatus) + '">' + esc(m.instanceStatus || '—') + (m.hung ? ' (hung)' : '') + '</td><td>' + esc(m.currentAction) + '</td><td>' + health(s.consul, m.name, m.id) + '</td></tr>').join('');
    return '<div class="card"><b>' + esc(g.name) + '</b> · target ' + g.targetSize + (g.status.isStable ? '' : ' <span class="warn">changing</span>') +
      '<div class="muted">' + policy + '</div><table><tr><th>zone</th><th>instance</th><th>id</th><th>ip</th><th>status</th><th>action</th><th>Consul health</th></tr>' + rows + '</table></div>';
  }).join('');
  const c = s.consul;
  document.getElementById('consul').innerHTML = 'leader <b>' + esc(c.leader || 'none') + '</b> · servers ' +
    c.servers.map((x) => '<span class="' + (x.running ? 'ok' : 'bad') + '">' + esc(x.name) + '</span>').join(' ') + ' · ' + c.nodes.length + ' nodes in catalog · deliveries ' +
    s.deliveries.map((d) => esc(d.subscription) + ': ' + d.delivered + ' ok, ' + d.failed + ' failed').join('; ');
  document.getElementById('events').innerHTML = '<tr><th>time</th><th>what</th><th></th></tr>' +
    s.compute.events.slice(-25).reverse().map((e) => '<tr><td>' + esc(new Date(e.at).toLocaleTimeString()) + '</td><td>' + esc(e.kind) + '</td><td>' + esc(e.message) + '</td></tr>').join('');
  document.getElementById('actions').innerHTML = '<tr><th>time</th><th>function</th><th>decision</th><th></th></tr>' +
    s.actions.slice(-25).reverse().map((a) => '<tr><td>' + esc(new Date(a.at).toLocaleTimeString()) + '</td><td>' + esc(a.function) + '</td><td>' + esc(a.decision) + '</td><td>' + esc(a.message) + '</td></tr>').join('');
}
const palette = ['#1a73e8', '#d93025', '#188038', '#e37400', '#9334e6', '#12b5cb', '#e52592', '#5f6368', '#b06000', '#3949ab'];
const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
const num = (v) => (Math.abs(v) >= 1000 ? (v / 1000).toFixed(1) + 'k' : String(Math.round(v * 100) / 100));
/** The y axis: a round step (1, 2, 2.5 or 5 times a power of ten) and a top a little above the largest value. */
function yAxis(largest) {
  const top = Math.max(largest * 1.1, 1);
  const p = Math.pow(10, Math.floor(Math.log10(top / 4)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * p).find((m) => m >= top / 4);
  return { step, max: step * Math.ceil(top / step) };
}
/** One chart as inline SVG: time axis over [from, to], y from 0, a path per series, legend below. */
function chartHtml(c, from, to) {
  const W = 560, H = 190, L = 46, R = 12, T = 10, B = 34;
  const drawn = c.series.filter((x) => x.points.length > 0);
  // Pairs such as "backend target" / "backend running" share a colour; the dashed one is the second.
  const stem = (x) => (c.series.some((y) => y.dashed) ? x.name.split(' ')[0] : x.name);
  const stems = [...new Set(c.series.map(stem))];
  const color = (x) => palette[stems.indexOf(stem(x)) % palette.length];
  // Headroom above the largest value, so a steady line does not run along the frame.
  const { step, max } = yAxis(Math.max(0, ...drawn.flatMap((x) => x.points.map((p) => p[1]))));
  const xOf = (t) => L + ((t - from) / (to - from)) * (W - L - R);
  const yOf = (v) => T + (1 - v / max) * (H - T - B);
  let svg = '<svg viewBox="0 0 ' + W + ' ' + H + '" role="img" aria-label="' + esc(c.title) + '">';
  for (let i = 0; i * step <= max + step / 1e6; i++) {
    const v = i * step, y = yOf(v).toFixed(1);
    svg += '<line x1="' + L + '" x2="' + (W - R) + '" y1="' + y + '" y2="' + y + '" stroke="' + (i ? '#eee' : '#9aa0a6') + '"/>' +
      '<text x="' + (L - 4) + '" y="' + (Number(y) + 4) + '" text-anchor="end">' + esc(num(v)) + '</text>';
  }
  for (let i = 0; i <= 5; i++) {
    const t = from + ((to - from) * i) / 5, x = xOf(t).toFixed(1);
    svg += '<line x1="' + x + '" x2="' + x + '" y1="' + T + '" y2="' + (H - B) + '" stroke="#f1f3f4"/>' +
      '<text x="' + x + '" y="' + (H - B + 14) + '" text-anchor="' + (i === 0 ? 'start' : i === 5 ? 'end' : 'middle') + '">' + esc(clock(t)) + '</text>';
  }
  svg += '<line x1="' + L + '" x2="' + L + '" y1="' + T + '" y2="' + (H - B) + '" stroke="#9aa0a6"/>';
  svg += '<text x="' + ((L + W - R) / 2) + '" y="' + (H - 4) + '" text-anchor="middle">time (last 15 min)</text>';
  svg += '<text transform="translate(11 ' + ((T + H - B) / 2) + ') rotate(-90)" text-anchor="middle">' + esc(c.unit) + '</text>';
  if (drawn.length === 0) {
    svg += '<text class="empty" x="' + ((L + W - R) / 2) + '" y="' + ((T + H - B) / 2) + '" text-anchor="middle" style="font-size:14px">no data yet</text>';
  }
  for (const x of drawn) {
    const d = x.points.map((p, i) => (i ? 'L' : 'M') + xOf(p[0]).toFixed(1) + ' ' + yOf(p[1]).toFixed(1)).join(' ');
    svg += '<path class="series" d="' + d + '" fill="none" stroke="' + color(x) + '" stroke-width="1.8"' + (x.dashed ? ' stroke-dasharray="5 3"' : '') + '/>';
    const lastPoint = x.points[x.points.length - 1];
    svg += '<circle cx="' + xOf(lastPoint[0]).toFixed(1) + '" cy="' + yOf(lastPoint[1]).toFixed(1) + '" r="2.5" fill="' + color(x) + '"/>';
  }
  svg += '</svg>';
  const legend = c.series.map((x) => {
    const now = x.points.length ? num(x.points[x.points.length - 1][1]) : '—';
    return '<span><span class="swatch' + (x.dashed ? ' dashed' : '') + '" style="border-color:' + color(x) + '"></span>' + esc(x.name) + ' <b>' + esc(now) + '</b></span>';
  }).join('');
  return '<div class="card chart" data-chart="' + esc(c.id) + '"><h3>' + esc(c.title) + '</h3>' + svg + '<div class="legend">' + legend + '</div></div>';
}
function renderCharts(h) {
  document.getElementById('charts').innerHTML = h.charts.map((c) => chartHtml(c, h.from, h.to)).join('');
}
function inWords(ms) {
  const s = Math.round(Math.abs(ms) / 1000), text = (s >= 60 ? Math.floor(s / 60) + 'm ' : '') + (s % 60) + 's';
  return ms >= 0 ? 'in ' + text : '<span class="muted">' + text + ' ago</span>';
}
function renderLeases(v, now) {
  const when = (ms) => esc(new Date(ms).toLocaleTimeString());
  let html = v.error ? '<p class="bad">KV not readable: ' + esc(v.error) + '</p>' : '';
  html += v.leases.length === 0 ? '<p class="muted">no leases in KV</p>' :
    '<table id="lease-list"><tr><th>autoscaler</th><th>incident</th><th>tier · rule</th><th>change</th><th>granted</th><th>expires</th></tr>' +
    v.leases.map((l) => '<tr><td>' + esc(l.autoscaler.split('/').pop()) + '</td><td><code>' + esc(l.incidentId) + '</code></td><td>' + esc(l.tier) + ' · ' + esc(l.rule) +
      '</td><td>' + esc(l.change) + '</td><td>' + when(l.grantedAt) + '</td><td class="' + (l.expiresAt > now ? 'ok' : 'warn') + '">' + when(l.expiresAt) + ' (' + inWords(l.expiresAt - now) + ')</td></tr>').join('') + '</table>';
  if (v.invalid.length) html += '<p class="warn">not a valid record: ' + v.invalid.map(esc).join(', ') + '</p>';
  if (v.skipped) html += '<p class="warn">' + esc(v.skipped) + ' more records not shown</p>';
  html += v.schedules.length === 0 ? '<p class="muted">no scaling schedules on the autoscalers</p>' :
    '<table id="schedule-list"><tr><th>autoscaler</th><th>scaling schedule</th><th>min replicas</th><th>duration</th><th>state</th><th>ends</th></tr>' +
    v.schedules.map((x) => '<tr><td>' + esc(x.autoscaler) + '</td><td><code>' + esc(x.name) + '</code></td><td>' + esc(x.minRequiredReplicas) + '</td><td>' + esc(x.durationSec) +
      ' s</td><td class="' + (x.state === 'ACTIVE' ? 'ok' : 'muted') + '">' + esc(x.state) + '</td><td>' + (x.end === null ? '—' : when(x.end) + ' (' + inWords(x.end - now) + ')') + '</td></tr>').join('') + '</table>';
  document.getElementById('leases').innerHTML = html;
}
async function refresh() {
  const [state, history] = await Promise.allSettled([
    fetch('/api/state').then((r) => r.json()),
    fetch('/api/history').then((r) => r.json()),
  ]);
  try {
    if (state.status === 'fulfilled') {
      render(state.value);
      renderLeases(state.value.leases, Date.parse(state.value.at));
    } else document.getElementById('updated').textContent = 'sandbox not answering: ' + state.reason;
    if (history.status === 'fulfilled') renderCharts(history.value);
  } catch (e) { document.getElementById('updated').textContent = 'cannot draw the answer: ' + e; }
}
refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
`;
