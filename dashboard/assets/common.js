// Shared helpers of every dashboard page: translation, the admin API
// client (session cookie + CSRF token), element building, formatting.
'use strict';
(function () {
  const ZH = window.KG_ZH || {};
  const lang = document.documentElement.lang === 'zh' ? 'zh' : 'en';

  // t translates an English string; {name} placeholders take vars.
  function t(s, vars) {
    let out = (lang === 'zh' && ZH[s]) || s;
    if (vars) for (const k of Object.keys(vars)) out = out.split('{' + k + '}').join(String(vars[k]));
    return out;
  }

  const csrfMeta = document.querySelector('meta[name="kg-csrf"]');
  const csrf = csrfMeta ? csrfMeta.content : '';

  class APIError extends Error {
    constructor(status, message, code) { super(message); this.status = status; this.code = code; }
  }

  // api calls the admin API with the session cookie; changes carry the
  // session's CSRF token. A 401 means the session ended: back to sign-in.
  async function api(method, path, body, extraHeaders) {
    const headers = Object.assign({ Accept: 'application/json' }, extraHeaders || {});
    if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = csrf;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const r = await fetch(path, {
      method, headers, credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (r.status === 401) {
      location.href = '/login?expired=1&next=' + encodeURIComponent(location.pathname);
      throw new APIError(401, t('Your session ended; sign in again.'));
    }
    if (headers.Accept === 'application/x-ndjson' && r.ok) return r;
    const text = await r.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (!r.ok) {
      const err = data && data.error ? data.error : {};
      throw new APIError(r.status, err.message || text || ('HTTP ' + r.status), err.code);
    }
    return data;
  }

  // h builds an element: h('td', {class: 'num'}, 'text', child…).
  function h(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else if (k === 'dataset') Object.assign(e.dataset, v);
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  const locale = lang === 'zh' ? 'zh-CN' : 'en-US';
  const nf = new Intl.NumberFormat(locale);
  function num(n) { return n === undefined || n === null ? '–' : nf.format(n); }
  function money(n) {
    if (n === undefined || n === null) return '–';
    return '$' + (n !== 0 && Math.abs(n) < 0.01 ? n.toFixed(6) : n.toFixed(2));
  }
  function pct(n) { return n === undefined || n === null ? '–' : (Math.round(n * 10) / 10) + ' %'; }
  function ms(n) { return !n ? '–' : n >= 1000 ? (n / 1000).toFixed(1) + ' s' : Math.round(n) + ' ms'; }
  function time(s) {
    if (!s) return '–';
    const d = new Date(s);
    if (isNaN(d) || d.getFullYear() < 2000) return '–';
    const today = d.toDateString() === new Date().toDateString();
    const opts = today ? { hour: '2-digit', minute: '2-digit', second: '2-digit' } : { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' };
    return d.toLocaleString(locale, opts);
  }
  // duration renders seconds as "2 min 5 s".
  function duration(sec) {
    if (!sec || sec <= 0) return '–';
    sec = Math.ceil(sec);
    if (sec < 60) return t('{n} s', { n: sec });
    if (sec < 3600) return t('{m} min {s} s', { m: Math.floor(sec / 60), s: sec % 60 });
    return t('{h} h {m} min', { h: Math.floor(sec / 3600), m: Math.floor((sec % 3600) / 60) });
  }

  function flash(msg, kind) {
    const f = document.getElementById('flash');
    if (!f) return;
    f.textContent = msg;
    f.className = 'flash ' + (kind || 'ok');
    f.hidden = false;
    clearTimeout(flash.timer);
    flash.timer = setTimeout(() => { f.hidden = true; }, 6000);
  }

  // showErrors puts an API validation error ("invalid model: base_url:
  // must be …; rpm: …") next to the fields it names; what names no field
  // goes to the form's error box.
  function showErrors(form, box, message) {
    form.querySelectorAll('.field-error').forEach((p) => { p.textContent = ''; });
    form.querySelectorAll('[aria-invalid]').forEach((i) => i.removeAttribute('aria-invalid'));
    box.hidden = true;
    if (!message) return;
    const rest = [];
    const body = message.replace(/^invalid [a-z ]+: /, '');
    for (const part of body.split('; ')) {
      const m = part.match(/^([a-z_]+(?:\[\d+\])?(?:\.[a-z_]+)*): (.*)$/);
      let placed = false;
      if (m) {
        const names = [m[1], m[1].replace(/\[\d+\]/g, ''), m[1].split(/[.[]/)[0]];
        for (const n of names) {
          const p = form.querySelector('.field-error[data-for="' + n + '"]');
          if (p) {
            p.textContent = (p.textContent ? p.textContent + '; ' : '') + (m[1] !== n ? m[1] + ': ' : '') + m[2];
            const input = form.querySelector('[name="' + n + '"]');
            if (input) input.setAttribute('aria-invalid', 'true');
            placed = true;
            break;
          }
        }
      }
      if (!placed) rest.push(part);
    }
    if (rest.length) { box.textContent = rest.join('; '); box.hidden = false; }
    const first = form.querySelector('[aria-invalid="true"]');
    if (first) first.focus();
  }

  // clear empties an element and appends children.
  function fill(el, ...children) { el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined)); }

  function statusBadge(status) {
    return h('span', { class: 'badge ' + status, dataset: { status } }, t(status));
  }

  // Language control: remembered in a cookie the server reads, so every
  // page renders in the chosen language from its first byte.
  const sel = document.getElementById('lang-select');
  if (sel) {
    sel.addEventListener('change', () => {
      document.cookie = 'kg_lang=' + sel.value + '; Path=/; Max-Age=31536000; SameSite=Strict';
      try { localStorage.setItem('kg_lang', sel.value); } catch (e) { /* private mode */ }
      location.reload();
    });
  }

    // clock and day label the axes of charts in the page's language.
  function clock(d) { return d.toLocaleTimeString(locale, { hour: '2-digit', minute: '2-digit' }); }
  function day(d) { return d.toLocaleDateString(locale, { month: 'short', day: 'numeric' }); }

  window.KG = { t, api, h, num, money, pct, ms, time, duration, flash, showErrors, fill, statusBadge, lang, locale, clock, day, APIError };
})();
