// Overview: keys by status over every model, traffic of the last hour,
// today's totals, key sources and keys about to run out. Refreshes every 5 s.
'use strict';
(function () {
  const { t, api, h, num, money, ms, time, duration, fill, statusBadge } = window.KG;
  const REFRESH_MS = 5000;

  function startOfToday() { const d = new Date(); d.setHours(0, 0, 0, 0); return d; }

  async function keys() {
    const s = await api('GET', '/api/v1/keys/summary');
    document.querySelector('[data-count="total"]').textContent = num(s.total);
    for (const [status, n] of Object.entries(s.by_status)) {
      const el = document.querySelector(`[data-count="${status}"]`);
      if (el) el.textContent = num(n);
    }
    const classes = Object.entries(s.by_class).sort((a, b) => b[1] - a[1]);
    const chips = classes.map(([c, n]) => h('a', { class: 'chip', href: '/keys?class=' + encodeURIComponent(c) }, h('strong', {}, num(n)), ' ', t(c)));
    if (s.ready_for_retry) chips.push(h('span', { class: 'chip' }, t('{n} ready for retry', { n: s.ready_for_retry })));
    if (s.next_recovery) chips.push(h('span', { class: 'chip' }, t('next key back in {d}', { d: duration((new Date(s.next_recovery) - Date.now()) / 1000) })));
    fill(document.getElementById('by-class'), chips.length ? chips : h('span', { class: 'muted small' }, t('No key has an error.')));
    const src = document.getElementById('sources');
    if (!s.sources.length) {
      fill(src, h('p', { class: 'muted' }, t('No model fetches its key from a key service.')));
    } else {
      fill(src, table([t('Key'), t('Models'), t('Status'), t('Last fetch'), t('Expires'), t('Fetches'), t('Failures'), t('Last error')],
        s.sources.map((x) => [x.masked, x.models.join(', '), statusBadge(x.status), time(x.fetched_at), time(x.expires_at), num(x.fetches), num(x.failures), x.last_error || '–'])));
    }
  }

  // runningOut lists the keys the forecast (SPEC 4a) says run dry within
  // an hour, when this keygate reports exhausts_at.
  async function runningOut() {
    const out = document.getElementById('running-out');
    const probe = await api('GET', '/api/v1/keys?limit=1');
    if (!probe.data.length || !('exhausts_at' in probe.data[0])) {
      fill(out, h('p', { class: 'muted' }, probe.data.length ? t('This version of keygate reports no quota forecast (remaining_requests, exhausts_at).') : t('No keys.')));
      return;
    }
    const keys = (await api('GET', '/api/v1/keys?sort=exhausts_at&limit=200')).data;
    const soon = keys.filter((k) => k.exhausts_at && new Date(k.exhausts_at) - Date.now() < 3600e3)
      .sort((a, b) => new Date(a.exhausts_at) - new Date(b.exhausts_at)).slice(0, 10);
    if (!soon.length) { fill(out, h('p', { class: 'muted' }, t('No key is forecast to run out within the hour.'))); return; }
    fill(out, table([t('Key'), t('Models'), t('Runs out'), t('Requests left'), t('Tokens left'), t('Window resets')],
      soon.map((k) => [k.masked, k.models.join(', '), time(k.exhausts_at), num(k.remaining_requests), num(k.remaining_tokens), time(k.resets_at)])));
  }

  async function traffic() {
    const now = new Date();
    const from = new Date(now - 3600e3);
    const s = await api('GET', `/api/v1/usage/series?from=${from.toISOString()}&to=${now.toISOString()}&bucket=60`);
    const byMinute = new Map();
    const origin = Date.parse(s.from); // the server starts buckets on a whole minute
    for (const b of s.data) byMinute.set(Math.round((Date.parse(b.start) - origin) / 60e3), b);
    const buckets = [];
    let req = 0, err = 0, lat = 0;
    const n = Math.ceil((Date.parse(s.to) - origin) / 60e3); // 61 when from was rounded down
    for (let i = 0; i < n; i++) {
      const v = byMinute.get(i) || { requests: 0, errors: 0, latency_ms: 0 };
      req += v.requests; err += v.errors; lat += v.latency_ms;
      buckets.push({ label: window.KG.clock(new Date(origin + i * 60e3)), total: v.requests,
        segments: [{ group: 'ok', value: v.requests - v.errors }, { group: 'errors', value: v.errors }] });
    }
    document.getElementById('rpm').textContent = (req / 60).toFixed(1);
    document.getElementById('epm').textContent = (err / 60).toFixed(1);
    document.getElementById('latency').textContent = req ? ms(lat / req) : '–';
    window.KGChart.columns(document.getElementById('minute-chart'), buckets, {
      height: 160, format: (v) => num(Math.round(v)), color: (g) => (g === 'errors' ? '#dc2626' : '#2563eb'),
    });
  }

  async function today() {
    const r = await api('GET', `/api/v1/usage?from=${startOfToday().toISOString()}&group_by=model`);
    let req = 0, tok = 0, cost = 0;
    for (const g of r.data) { req += g.requests; tok += g.total_tokens; cost += g.cost; }
    document.getElementById('today-requests').textContent = num(req);
    document.getElementById('today-tokens').textContent = num(tok);
    document.getElementById('today-cost').textContent = money(cost);
    fill(document.getElementById('today-models'), r.data.length
      ? table([t('Model'), t('Requests'), t('Tokens used'), t('Cost')], r.data.map((g) => [g.group || '–', num(g.requests), num(g.total_tokens), money(g.cost)]))
      : h('p', { class: 'muted' }, t('No requests today yet.')));
  }

  function table(head, rows) {
    return h('table', { class: 'data compact responsive' },
      h('thead', {}, h('tr', {}, head.map((c) => h('th', {}, c)))),
      h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c, i) => h('td', { 'data-label': head[i] }, c))))));
  }

  // Key counts refresh every 5 s; the usage aggregates, which read the
  // usage records, every third time.
  let round = 0;
  async function refresh() {
    const parts = round++ % 3 === 0 ? [keys(), runningOut(), traffic(), today()] : [keys()];
    const results = await Promise.allSettled(parts);
    const failed = results.find((r) => r.status === 'rejected');
    const u = document.getElementById('updated');
    u.textContent = failed ? t('Update failed: {e}', { e: failed.reason.message }) : t('Updated {t}', { t: new Date().toLocaleTimeString(window.KG.locale) });
    u.classList.toggle('bad', !!failed);
  }
  refresh();
  setInterval(refresh, REFRESH_MS);
})();
