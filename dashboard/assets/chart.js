// SVG charts drawn in the page: vertical (optionally stacked) bars over
// time and horizontal bars by group. Values travel as data attributes so
// a reader (or a test) can check a bar against the API.
'use strict';
(function () {
  const NS = 'http://www.w3.org/2000/svg';
  const PALETTE = ['#2563eb', '#16a34a', '#d97706', '#9333ea', '#dc2626', '#0891b2', '#db2777', '#65a30d', '#475569'];

  function svg(tag, attrs, ...children) {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined) e.setAttribute(k, v);
    for (const c of children) if (c) e.append(c);
    return e;
  }
  function title(text) { const t = svg('title'); t.textContent = text; return t; }
  function text(x, y, s, cls, anchor) {
    const e = svg('text', { x, y, class: cls || 'axis', 'text-anchor': anchor || 'start' });
    e.textContent = s;
    return e;
  }

  // colorFor gives each group a stable colour from its position in groups.
  function colorFor(groups) {
    const m = new Map(groups.map((g, i) => [g, PALETTE[i % PALETTE.length]]));
    return (g) => m.get(g) || PALETTE[PALETTE.length - 1];
  }

  // niceMax rounds v up to four equal, readable steps.
  function niceMax(v) {
    if (v <= 0) return 4;
    const raw = v / 4, p = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 5, 10]) if (m * p >= raw) return 4 * m * p;
    return 40 * p;
  }

  // columns draws one column per bucket: {label, total, segments:[{group,value}]}.
  function columns(el, buckets, opts) {
    // Drawn at the container's own width, so text keeps its size.
    const W = Math.max(280, el.clientWidth || 720), H = opts.height || 200, left = 48, bottom = 22, top = 8;
    const max = niceMax(Math.max(0, ...buckets.map((b) => b.total)));
    const plotW = W - left - 4, plotH = H - top - bottom;
    const bw = plotW / Math.max(1, buckets.length);
    const every = Math.max(1, Math.ceil(buckets.length / Math.max(1, Math.floor(plotW / 72)))); // a label per 72 px
    const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart-svg', 'aria-hidden': 'true' });
    for (let i = 0; i <= 4; i++) {
      const y = top + plotH - (plotH * i) / 4;
      root.append(svg('line', { x1: left, x2: W - 4, y1: y, y2: y, class: 'grid' }));
      root.append(text(left - 6, y + 4, opts.format(max * i / 4), 'axis', 'end'));
    }
    buckets.forEach((b, i) => {
      const x = left + i * bw + Math.max(1, bw * 0.12);
      const w = Math.max(1, bw * 0.76);
      let y = top + plotH;
      const g = svg('g', { class: 'col', 'data-label': b.label, 'data-value': b.total });
      for (const s of b.segments || [{ group: '', value: b.total }]) {
        const hgt = (plotH * s.value) / max;
        if (hgt <= 0) continue;
        y -= hgt;
        g.append(svg('rect', { x, y, width: w, height: hgt, fill: opts.color(s.group), class: 'bar', 'data-group': s.group, 'data-value': s.value },
          title(`${b.label} · ${s.group ? s.group + ': ' : ''}${opts.format(s.value)}`)));
      }
      root.append(g);
      if (i % every === 0) root.append(text(x + w / 2, H - 6, b.label, 'axis', 'middle'));
    });
    el.replaceChildren(root);
  }

  // hbars draws one horizontal bar per item: {group, value}; labels beside.
  function hbars(el, items, opts) {
    const rowH = 28, W = Math.max(280, el.clientWidth || 560), labelW = Math.min(170, W * 0.36), valueW = 90;
    const H = Math.max(rowH, items.length * rowH) + 4;
    const max = Math.max(0, ...items.map((i) => i.value)) || 1;
    const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart-svg hbars', 'aria-hidden': 'true' });
    items.forEach((it, i) => {
      const y = 2 + i * rowH;
      const w = Math.max(it.value > 0 ? 2 : 0, ((W - labelW - valueW) * it.value) / max);
      const room = Math.floor(labelW / 7.5);
      const label = it.group.length > room ? it.group.slice(0, room - 1) + '…' : it.group;
      root.append(text(labelW - 8, y + 18, label || '–', 'label', 'end'));
      root.append(svg('rect', { x: labelW, y: y + 5, width: w, height: rowH - 10, rx: 3, fill: opts.color(it.group),
        class: 'bar', 'data-group': it.group, 'data-value': it.value }, title(`${it.group}: ${opts.format(it.value)}`)));
      root.append(text(labelW + w + 6, y + 18, opts.format(it.value), 'value'));
    });
    el.replaceChildren(root);
  }

  window.KGChart = { columns, hbars, colorFor };
})();
