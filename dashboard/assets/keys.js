// Keys: the table of SPEC section 4, searched, filtered, sorted and paged
// on the server; one key's history and advice; actions for one key or a
// selection; a live check; import by pasting.
'use strict';
(function () {
  const { t, api, h, num, money, pct, ms, time, duration, fill, flash, statusBadge } = window.KG;
  const PAGE = 50;
  const state = { q: '', status: '', model: '', class: '', sort: 'id', order: 'asc', offset: 0, total: 0, rows: [] };
  const selected = new Set();
  const $ = (id) => document.getElementById(id);

  // Filters start from the address (?status=cooldown), so Overview links work.
  const params = new URLSearchParams(location.search);
  for (const k of ['q', 'status', 'model', 'class']) if (params.get(k)) state[k] = params.get(k);

  const ADVICE = {
    authentication_error: 'Replace the key; reset it only if it was restored.',
    permission_denied: "Check the key's project or organisation access to the model.",
    insufficient_quota: 'Top up the account; keygate re-checks on its schedule and brings the key back.',
    rate_limit_exceeded: "Nothing to do: the cooldown follows the provider's Retry-After; add keys for more throughput.",
    service_unavailable: 'Nothing to do: the provider is overloaded; keygate retries after a short cooldown.',
    internal_error: "Nothing to do unless it persists; then check the provider's status page.",
    unknown_error: 'Read the last error; reset the key once the cause is fixed.',
  };
  function advice(k) {
    if (k.operator_disabled) return t('Switched off by an operator: Enable puts it back.');
    if (k.error_class) return t(ADVICE[k.error_class] || ADVICE.unknown_error);
    if (k.status === 'warning') return t('The key is slow; watch it, or lower its weight.');
    if (k.status === 'error') return t('Many calls fail; check the provider and the network, then reset.');
    return t('Nothing to do.');
  }

  async function load() {
    const q = new URLSearchParams({ sort: state.sort, order: state.order, limit: PAGE, offset: state.offset });
    for (const k of ['q', 'status', 'model', 'class']) if (state[k]) q.set(k, state[k]);
    let r;
    try { r = await api('GET', '/api/v1/keys?' + q); } catch (e) { flash(e.message, 'bad'); return; }
    state.total = r.total;
    state.rows = r.data;
    if (state.offset > 0 && state.offset >= r.total) { state.offset = 0; return load(); }
    render();
  }

  function render() {
    const body = $('keys-body');
    if (!state.rows.length) {
      fill(body, h('tr', {}, h('td', { colspan: 12, class: 'muted' }, state.total ? '' : t('No keys match.'))));
    } else {
      const heads = [...document.querySelectorAll('#keys-table thead th')].map((th) => th.textContent.trim());
      fill(body, state.rows.map((k) => {
        const cb = h('input', { type: 'checkbox', 'aria-label': t('Select key {k}', { k: k.masked }), checked: selected.has(k.id) });
        cb.addEventListener('change', () => { cb.checked ? selected.add(k.id) : selected.delete(k.id); updateBulk(); });
        const back = k.cooldown_seconds_left > 0 ? duration(k.cooldown_seconds_left) : (k.status === 'disabled' ? t('after reset') : '–');
        return h('tr', { dataset: { id: k.id, status: k.status } },
          h('td', { class: 'sel' }, cb),
          h('td', { 'data-label': heads[1] }, h('button', { type: 'button', class: 'link mono', onclick: () => details(k.id) }, k.masked)),
          h('td', { 'data-label': heads[2], class: 'wrap' }, k.models.join(', ')),
          h('td', { 'data-label': heads[3] }, statusBadge(k.status)),
          h('td', { 'data-label': heads[4] }, k.error_class ? t(k.error_class) : '–'),
          h('td', { 'data-label': heads[5], class: 'nowrap' }, back),
          h('td', { 'data-label': heads[6], class: 'num' }, pct(k.success_rate)),
          h('td', { 'data-label': heads[7], class: 'num' }, ms(k.avg_latency_ms)),
          h('td', { 'data-label': heads[8], class: 'num' }, num(k.total_requests)),
          h('td', { 'data-label': heads[9], class: 'num' }, money(k.cost)),
          h('td', { 'data-label': heads[10], class: 'nowrap' }, time(k.last_used_at)),
          h('td', { class: 'actions' }, h('button', { type: 'button', class: 'btn small ghost', onclick: () => details(k.id) }, t('Details'))));
      }));
    }
    const end = Math.min(state.offset + PAGE, state.total);
    fill($('pager'),
      h('span', { class: 'muted', id: 'pager-text' }, state.total ? t('{a}–{b} of {n} keys', { a: state.offset + 1, b: end, n: num(state.total) }) : t('0 keys')),
      h('div', { class: 'btn-row' },
        h('button', { type: 'button', class: 'btn small', disabled: state.offset === 0, onclick: () => { state.offset = Math.max(0, state.offset - PAGE); load(); } }, t('Previous')),
        h('button', { type: 'button', class: 'btn small', disabled: end >= state.total, onclick: () => { state.offset += PAGE; load(); } }, t('Next'))));
    document.querySelectorAll('button.sort').forEach((b) => {
      const th = b.closest('th');
      if (b.dataset.sort === state.sort) th.setAttribute('aria-sort', state.order === 'asc' ? 'ascending' : 'descending');
      else th.removeAttribute('aria-sort');
    });
    $('select-all').checked = state.rows.length > 0 && state.rows.every((k) => selected.has(k.id));
    updateBulk();
  }

  function updateBulk() {
    $('selected-count').textContent = selected.size ? t('{n} selected', { n: selected.size }) : t('Select keys for bulk actions');
    document.querySelectorAll('[data-bulk]').forEach((b) => { b.disabled = selected.size === 0; });
  }

  // act runs one action on keys, a few at a time, and reports the outcome.
  async function act(action, ids) {
    if (action === 'check') return check(ids);
    if (action === 'delete' && !confirm(t('Delete {n} key(s) from every model that uses them?', { n: ids.length }))) return;
    const one = (id) => {
      const p = '/api/v1/keys/' + encodeURIComponent(id);
      if (action === 'reset') return api('POST', p + '/reset');
      if (action === 'enable') return api('PATCH', p, { status: 'enabled' });
      if (action === 'disable') return api('PATCH', p, { status: 'disabled' });
      if (action === 'delete') return api('DELETE', p);
    };
    const errors = [];
    const queue = [...ids];
    await Promise.all(Array.from({ length: Math.min(4, queue.length) }, async () => {
      while (queue.length) {
        const id = queue.shift();
        try { await one(id); } catch (e) { errors.push(e.message); }
      }
    }));
    if (action === 'delete') ids.forEach((id) => selected.delete(id));
    const done = ids.length - errors.length;
    flash(t('{action}: {n} of {m} done', { action: t(cap(action)), n: done, m: ids.length }) + (errors.length ? ' — ' + errors[0] : ''), errors.length ? 'bad' : 'ok');
    await load();
  }
  function cap(s) { return s[0].toUpperCase() + s.slice(1); }

  // check streams the NDJSON check route into a progress bar.
  async function check(ids) {
    const box = $('check-progress'), bar = $('check-bar'), txt = $('check-text'), res = $('check-results');
    box.hidden = false; bar.value = 0; txt.textContent = t('starting…'); fill(res);
    const q = new URLSearchParams();
    if (ids) ids.forEach((id) => q.append('id', id));
    else if (state.model) q.set('model', state.model);
    let r;
    try { r = await api('POST', '/api/v1/keys/check?' + q, undefined, { Accept: 'application/x-ndjson' }); } catch (e) { txt.textContent = e.message; return; }
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = '', total = 0, done = 0, passed = 0;
    const failed = [];
    const show = () => {
      const p = total ? Math.round((done * 100) / total) : 100;
      bar.value = p;
      txt.textContent = t('{d} / {n} keys ({p} %)', { d: done, n: total, p });
      box.dataset.percent = p;
    };
    for (;;) {
      const { value, done: end } = await reader.read();
      if (value) buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i).trim();
        buf = buf.slice(i + 1);
        if (!line) continue;
        const m = JSON.parse(line);
        if ('total' in m && !('id' in m)) total = m.total;
        else { done++; if (m.ok) passed++; else failed.push(m); }
        show();
      }
      if (end) break;
    }
    show();
    fill(res, h('p', {}, t('{p} passed, {f} failed', { p: passed, f: failed.length })),
      failed.length ? h('ul', { class: 'plain' }, failed.slice(0, 20).map((m) => h('li', {}, h('span', { class: 'mono' }, m.masked), ' — ', m.class ? t(m.class) : '', ' ', m.message || ''))) : null);
    await load();
  }

  async function details(id) {
    const dlg = $('key-dialog');
    let k;
    try { k = await api('GET', '/api/v1/keys/' + encodeURIComponent(id)); } catch (e) { flash(e.message, 'bad'); return; }
    $('key-title').textContent = t('Key') + ' ' + k.masked;
    const rows = [
      ['ID', h('span', { class: 'mono' }, k.id)], [t('Models'), k.models.join(', ')], [t('Status'), statusBadge(k.status)],
      [t('Error class'), k.error_class ? t(k.error_class) : '–'], [t('First error'), time(k.first_error_at)],
      [t('Retries'), num(k.retry_count)], [t('Next retry'), time(k.next_retry_at)], [t('Last error'), k.last_error || '–'],
      [t('Requests'), t('{n} ({ok} ok, {bad} failed, {rate} success)', { n: num(k.total_requests), ok: num(k.success_count), bad: num(k.failure_count), rate: pct(k.success_rate) })],
      [t('Avg latency'), ms(k.avg_latency_ms)], [t('Tokens used'), t('{p} prompt, {c} completion', { p: num(k.prompt_tokens), c: num(k.completion_tokens) })],
      [t('Cost'), money(k.cost)], [t('Last used'), time(k.last_used_at)],
    ];
    if (k.source) rows.push([t('Fetched from'), k.source.url], [t('Expires'), time(k.source.expires_at)]);
    if ('remaining_requests' in k) rows.push([t('Requests left'), num(k.remaining_requests)], [t('Tokens left'), num(k.remaining_tokens)], [t('Runs out'), time(k.exhausts_at)]);
    const chart = h('div', { class: 'chart', id: 'key-chart', role: 'img', 'aria-label': t('Requests of this key, last 24 hours') });
    fill($('key-detail'),
      h('p', { class: 'advice' }, h('strong', {}, t('Advice') + ': '), advice(k)),
      h('dl', { class: 'kv' }, rows.map(([a, b]) => [h('dt', {}, a), h('dd', {}, b)])),
      h('h3', {}, t('Last 24 hours')), chart,
      h('div', { class: 'btn-row' }, ['reset', k.operator_disabled ? 'enable' : 'disable', 'check', 'delete'].map((a) =>
        h('button', { type: 'button', class: 'btn small' + (a === 'delete' ? ' danger' : ''), onclick: async () => { dlg.close(); await act(a, [k.id]); } }, t(cap(a))))));
    if (!dlg.open) dlg.showModal();
    const to = new Date(), from = new Date(to - 24 * 3600e3);
    api('GET', `/api/v1/usage/series?from=${from.toISOString()}&to=${to.toISOString()}&bucket=3600&key=${encodeURIComponent(k.id)}`).then((s) => {
      const origin = Date.parse(s.from);
      const byHour = new Map(s.data.map((b) => [Math.round((Date.parse(b.start) - origin) / 3600e3), b]));
      const buckets = Array.from({ length: Math.ceil((Date.parse(s.to) - origin) / 3600e3) }, (_, i) => {
        const b = byHour.get(i) || { requests: 0, errors: 0 };
        return { label: window.KG.clock(new Date(origin + i * 3600e3)), total: b.requests,
          segments: [{ group: 'ok', value: b.requests - b.errors }, { group: 'errors', value: b.errors }] };
      });
      window.KGChart.columns(chart, buckets, { height: 140, format: (v) => num(Math.round(v)), color: (g) => (g === 'errors' ? '#dc2626' : '#2563eb') });
    }).catch(() => fill(chart, h('p', { class: 'muted' }, t('No usage history.'))));
  }

  // Import: one key per line; the API reports those the model already has
  // and those repeated in the paste as duplicates.
  let models = [];
  async function loadModels() {
    try { models = (await api('GET', '/api/v1/llm-models')).data; } catch (e) { models = []; }
    const ids = [...new Set(models.map((m) => m.model_id))].sort();
    const fm = $('f-model');
    for (const id of ids) fm.append(h('option', { value: id, selected: state.model === id }, id));
    fill($('import-model'), models.map((m) => h('option', { value: m.id }, m.model_id + (m.name ? ' — ' + m.name : '') + ' (#' + m.id + ')')));
  }
  $('open-import').addEventListener('click', () => { fill($('import-result')); $('import-error').hidden = true; $('import-dialog').showModal(); });
  $('import-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const keys = $('import-keys').value.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    const err = $('import-error');
    err.hidden = true;
    if (!keys.length) { err.textContent = t('Paste at least one key.'); err.hidden = false; return; }
    try {
      const r = await api('POST', `/api/v1/llm-models/${$('import-model').value}/keys`, { keys });
      fill($('import-result'),
        h('p', { class: 'ok-box', id: 'import-summary' }, t('{a} added, {d} duplicates', { a: r.added.length, d: r.duplicates.length })),
        r.duplicates.length ? h('div', {}, h('p', {}, t('Duplicates (already in the model, or repeated in the paste):')),
          h('ul', { class: 'plain', id: 'import-duplicates' }, r.duplicates.map((k) => h('li', { class: 'mono' }, k.masked)))) : null);
      $('import-keys').value = '';
      load();
    } catch (e) { err.textContent = e.message; err.hidden = false; }
  });

  // Controls.
  const f = { q: $('f-q'), status: $('f-status'), model: $('f-model'), class: $('f-class') };
  f.q.value = state.q; f.status.value = state.status; f.class.value = state.class;
  let timer;
  f.q.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(() => { state.q = f.q.value; state.offset = 0; load(); }, 250); });
  for (const k of ['status', 'model', 'class']) f[k].addEventListener('change', () => { state[k] = f[k].value; state.offset = 0; load(); });
  $('filters').addEventListener('submit', (e) => e.preventDefault());
  document.querySelectorAll('button.sort').forEach((b) => b.addEventListener('click', () => {
    if (state.sort === b.dataset.sort) state.order = state.order === 'asc' ? 'desc' : 'asc';
    else { state.sort = b.dataset.sort; state.order = 'asc'; }
    load();
  }));
  $('select-all').addEventListener('change', (e) => {
    for (const k of state.rows) e.target.checked ? selected.add(k.id) : selected.delete(k.id);
    render();
  });
  document.querySelectorAll('[data-bulk]').forEach((b) => b.addEventListener('click', () => act(b.dataset.bulk, [...selected])));
  $('check-all').addEventListener('click', () => check(null));

  loadModels();
  load();
  setInterval(() => { if (!document.querySelector('dialog[open]')) load(); }, 10000);
})();
