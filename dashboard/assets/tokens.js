// Tokens: create (the secret shown once, as text, with a copy button),
// revoke, limits and budget spent.
'use strict';
(function () {
  const { t, api, h, num, money, time, fill, flash, showErrors } = window.KG;
  const $ = (id) => document.getElementById(id);
  const form = $('token-form');

  async function load() {
    let list;
    try { list = (await api('GET', '/api/v1/tokens')).data; } catch (e) { flash(e.message, 'bad'); return; }
    const heads = [...document.querySelectorAll('#tokens-table thead th')].map((th) => th.textContent.trim());
    const body = $('tokens-body');
    if (!list.length) { fill(body, h('tr', {}, h('td', { colspan: 10, class: 'muted' }, t('No tokens yet.')))); return; }
    fill(body, list.map((tk) => {
      const budget = tk.budget ? `${money(tk.budget.amount)} ${t(tk.budget.period)}` : '–';
      let spent = '–';
      if (tk.spent !== undefined) {
        spent = money(tk.spent);
        if (tk.budget) spent += ` (${Math.round((tk.spent * 100) / tk.budget.amount)} %)`;
      }
      return h('tr', { dataset: { name: tk.name } },
        h('td', { 'data-label': heads[0] }, h('strong', {}, tk.name)),
        h('td', { 'data-label': heads[1] }, tk.user || '–'),
        h('td', { 'data-label': heads[2] }, (tk.models || ['*']).join(', ')),
        h('td', { 'data-label': heads[3], class: 'num' }, tk.rpm ? num(tk.rpm) : '–'),
        h('td', { 'data-label': heads[4], class: 'num' }, tk.tpm ? num(tk.tpm) : '–'),
        h('td', { 'data-label': heads[5] }, budget),
        h('td', { 'data-label': heads[6], class: 'num' }, spent),
        h('td', { 'data-label': heads[7] }, time(tk.expires_at)),
        h('td', { 'data-label': heads[8] }, time(tk.created_at)),
        h('td', { class: 'actions' }, h('button', { type: 'button', class: 'btn small danger', onclick: () => revoke(tk) }, t('Revoke'))));
    }));
  }

  async function revoke(tk) {
    if (!confirm(t('Revoke token {n}? Callers using it are refused at once.', { n: tk.name }))) return;
    try { await api('DELETE', '/api/v1/tokens/' + tk.id); flash(t('Token revoked.')); } catch (e) { flash(e.message, 'bad'); }
    load();
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const v = (n) => form.elements[n].value.trim();
    const b = { name: v('name'), models: v('models').split(',').map((s) => s.trim()).filter(Boolean) };
    if (v('user')) b.user = v('user');
    if (v('rpm')) b.rpm = Number(v('rpm'));
    if (v('tpm')) b.tpm = Number(v('tpm'));
    if (v('budget.amount')) b.budget = { amount: Number(v('budget.amount')), period: v('budget.period') };
    if (v('expires_at')) b.expires_at = new Date(v('expires_at')).toISOString();
    try {
      const r = await api('POST', '/api/v1/tokens', b);
      showErrors(form, $('token-error'), '');
      $('new-secret').textContent = r.token;
      $('new-secret-box').hidden = false;
      form.reset();
      load();
    } catch (e) {
      showErrors(form, $('token-error'), e.message);
    }
  });

  $('copy-secret').addEventListener('click', async () => {
    const s = $('new-secret').textContent;
    try {
      await navigator.clipboard.writeText(s);
    } catch (e) {
      const range = document.createRange();
      range.selectNodeContents($('new-secret'));
      const sel = getSelection(); sel.removeAllRanges(); sel.addRange(range);
      document.execCommand('copy');
    }
    $('copy-secret').textContent = t('Copied');
  });
  load();
})();
