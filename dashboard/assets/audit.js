// Audit: the log of admin changes (SPEC section 7), read from
// GET /api/v1/audit when this keygate has it.
'use strict';
(function () {
  const { t, api, h, time, fill } = window.KG;
  const $ = (id) => document.getElementById(id);

  async function load() {
    const to = new Date(), from = new Date(to - Number($('a-range').value) * 1000);
    const q = new URLSearchParams({ from: from.toISOString(), to: to.toISOString() });
    if ($('a-actor').value.trim()) q.set('actor', $('a-actor').value.trim());
    if ($('a-action').value.trim()) q.set('action', $('a-action').value.trim());
    const out = $('audit-out');
    let r;
    try { r = await api('GET', '/api/v1/audit?' + q); } catch (e) {
      if (e.status === 404) {
        fill(out, h('p', { class: 'notice', id: 'audit-unavailable' }, t('The audit log is not available in this version of keygate.')));
      } else fill(out, h('p', { class: 'error-box' }, e.message));
      return;
    }
    const rows = Array.isArray(r) ? r : r.data || [];
    if (!rows.length) { fill(out, h('p', { class: 'muted' }, t('No entries in this period.'))); return; }
    const cols = [['time', t('Time')], ['actor', t('Actor')], ['action', t('Action')], ['target', t('Target')], ['source', t('Source address')]];
    const val = (e, k) => {
      const v = e[k] !== undefined ? e[k] : (k === 'source' ? e.remote || e.source_address || e.ip : undefined);
      if (v === undefined || v === null || v === '') return '–';
      if (k === 'time') return time(v);
      return typeof v === 'object' ? JSON.stringify(v) : String(v);
    };
    fill(out, h('table', { class: 'data responsive' },
      h('thead', {}, h('tr', {}, cols.map(([, l]) => h('th', {}, l)))),
      h('tbody', {}, rows.map((e) => h('tr', {}, cols.map(([k, l]) => h('td', { 'data-label': l, class: 'wrap' }, val(e, k))))))));
  }
  for (const id of ['a-range']) $(id).addEventListener('change', load);
  for (const id of ['a-actor', 'a-action']) $(id).addEventListener('change', load);
  $('audit-filters').addEventListener('submit', (e) => { e.preventDefault(); load(); });
  load();
})();
