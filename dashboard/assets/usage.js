// Usage: requests, tokens and cost over time and by model, key, user or
// token. The server aggregates (GET /api/v1/usage and /usage/series);
// opens on the last 24 hours grouped by model.
'use strict';
(function () {
  const { t, api, h, num, money, fill, flash } = window.KG;
  const $ = (id) => document.getElementById(id);
  const fmt = { requests: (v) => num(Math.round(v)), total_tokens: (v) => num(Math.round(v)), cost: money };

  async function load() {
    const span = Number($('u-range').value), group = $('u-group').value, metric = $('u-metric').value;
    const to = new Date(), from = new Date(to - span * 1000);
    const range = `from=${from.toISOString()}&to=${to.toISOString()}&group_by=${group}`;
    $('csv-link').href = '/api/v1/usage?format=csv&' + range;
    let totals, series;
    try {
      [totals, series] = await Promise.all([api('GET', '/api/v1/usage?' + range), api('GET', '/api/v1/usage/series?' + range)]);
    } catch (e) { flash(e.message, 'bad'); return; }
    const groups = totals.data.slice().sort((a, b) => b[metric] - a[metric]);
    const color = window.KGChart.colorFor(groups.map((g) => g.group));
    const f = fmt[metric];

    // By group: one bar per group, with the totals as text beside.
    const chart = $('group-chart');
    chart.dataset.from = from.toISOString(); chart.dataset.to = to.toISOString();
    chart.dataset.groupBy = group; chart.dataset.metric = metric;
    if (!groups.length) fill(chart, h('p', { class: 'muted' }, t('No requests in this period.')));
    else window.KGChart.hbars(chart, groups.map((g) => ({ group: g.group, value: g[metric] })), { color, format: f });
    const sum = (k) => totals.data.reduce((s, g) => s + g[k], 0);
    fill($('usage-totals'),
      [[t('Requests'), num(sum('requests')), 'requests'], [t('Prompt tokens'), num(sum('prompt_tokens')), 'prompt_tokens'],
        [t('Completion tokens'), num(sum('completion_tokens')), 'completion_tokens'], [t('Total tokens'), num(sum('total_tokens')), 'total_tokens'],
        [t('Cost'), money(sum('cost')), 'cost']].map(([k, v, id]) => h('div', { class: 'total-row' }, h('dt', {}, k), h('dd', { dataset: { total: id } }, v))));

    // Over time: stacked columns per bucket.
    const step = series.bucket_seconds * 1000, start = Date.parse(series.from);
    const n = Math.ceil((Date.parse(series.to) - start) / step);
    const cols = Array.from({ length: n }, (_, i) => ({ label: label(new Date(start + i * step), series.bucket_seconds), total: 0, segments: [] }));
    for (const b of series.data) {
      const i = Math.round((Date.parse(b.start) - start) / step);
      if (!cols[i]) continue;
      cols[i].total += b[metric];
      cols[i].segments.push({ group: b.group, value: b[metric] });
    }
    window.KGChart.columns($('time-chart'), cols, { height: 220, format: f, color });
    fill($('time-legend'), groups.slice(0, 12).map((g) => h('span', { class: 'key' }, h('i', { class: 'swatch', dataset: { color: color(g.group) } }), g.group || '–')));
    document.querySelectorAll('#time-legend .swatch').forEach((s) => { s.style.background = s.dataset.color; });

    // Table.
    $('u-group-col').textContent = t(group);
    const heads = [...document.querySelectorAll('#usage-table thead th')].map((th) => th.textContent.trim());
    fill($('usage-body'), groups.length ? groups.map((g) => h('tr', { dataset: { group: g.group } },
      h('td', { 'data-label': heads[0], class: 'wrap' }, g.group || '–'),
      h('td', { 'data-label': heads[1], class: 'num' }, num(g.requests)),
      h('td', { 'data-label': heads[2], class: 'num' }, num(g.prompt_tokens)),
      h('td', { 'data-label': heads[3], class: 'num' }, num(g.completion_tokens)),
      h('td', { 'data-label': heads[4], class: 'num' }, num(g.total_tokens)),
      h('td', { 'data-label': heads[5], class: 'num' }, money(g.cost)))) : h('tr', {}, h('td', { colspan: 6, class: 'muted' }, t('No requests in this period.'))));
  }

  function label(d, bucket) {
    return bucket >= 86400 ? window.KG.day(d) : window.KG.clock(d);
  }

  for (const id of ['u-range', 'u-group', 'u-metric']) $(id).addEventListener('change', load);
  $('usage-filters').addEventListener('submit', (e) => e.preventDefault());
  load();
})();
