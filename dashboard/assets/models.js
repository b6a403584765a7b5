// Models: create, edit and delete models with their keys, key source,
// prices, limits and fallbacks; the API's validation errors go next to
// the field they name.
'use strict';
(function () {
  const { t, api, h, num, fill, flash, showErrors } = window.KG;
  const $ = (id) => document.getElementById(id);
  const form = $('model-form'), dlg = $('model-dialog');
  let models = [], editing = null;

  async function load() {
    try { models = (await api('GET', '/api/v1/llm-models')).data; } catch (e) { flash(e.message, 'bad'); return; }
    const heads = [...document.querySelectorAll('#models-table thead th')].map((th) => th.textContent.trim());
    const body = $('models-body');
    if (!models.length) { fill(body, h('tr', {}, h('td', { colspan: 9, class: 'muted' }, t('No models yet.')))); return; }
    fill(body, models.map((m) => h('tr', { dataset: { id: m.id } },
      h('td', { 'data-label': heads[0] }, h('strong', {}, m.model_id), m.name ? h('div', { class: 'muted small' }, m.name) : null),
      h('td', { 'data-label': heads[1] }, m.provider || 'openai', h('div', { class: 'muted small wrap' }, m.base_url || '')),
      h('td', { 'data-label': heads[2] }, h('span', { class: 'badge ' + (m.status === 'enabled' ? 'healthy' : 'disabled') }, t(m.status || 'enabled'))),
      h('td', { 'data-label': heads[3], class: 'num' }, num((m.api_keys || []).length)),
      h('td', { 'data-label': heads[4], class: 'wrap' }, m.key_source ? (m.key_source.url + (m.key_source.scene_code ? ' · ' + m.key_source.scene_code : '')) : '–'),
      h('td', { 'data-label': heads[5], class: 'num' }, m.input_price || m.output_price ? `$${m.input_price || 0} / $${m.output_price || 0}` : '–'),
      h('td', { 'data-label': heads[6], class: 'num' }, m.rpm || m.tpm ? `${m.rpm ? num(m.rpm) : '–'} / ${m.tpm ? num(m.tpm) : '–'}` : '–'),
      h('td', { 'data-label': heads[7] }, (m.fallbacks || []).join(', ') || '–'),
      h('td', { class: 'actions' },
        h('button', { type: 'button', class: 'btn small', onclick: () => open(m) }, t('Edit')),
        h('button', { type: 'button', class: 'btn small danger', onclick: () => remove(m) }, t('Delete'))))));
  }

  const plain = ['model_id', 'name', 'provider', 'status', 'base_url', 'upstream_model', 'key_usage_mode', 'type', 'api_version', 'description'];
  const numbers = ['input_price', 'output_price', 'rpm', 'tpm', 'max_tokens', 'context_window'];
  const ks = { url: 'm-ks-url', scene_code: 'm-ks-scene', method: 'm-ks-method', expire_seconds: 'm-ks-expire', refresh_before_seconds: 'm-ks-refresh' };

  function open(m) {
    editing = m;
    form.reset();
    showErrors(form, $('model-error'), '');
    $('model-title').textContent = m ? t('Edit model {m}', { m: m.model_id }) : t('New model');
    for (const f of plain) if (m && m[f] !== undefined) form.elements[f].value = m[f];
    for (const f of numbers) form.elements[f].value = m && m[f] ? m[f] : '';
    form.elements.fallbacks.value = m && m.fallbacks ? m.fallbacks.join(', ') : '';
    for (const [f, id] of Object.entries(ks)) $(id).value = m && m.key_source && m.key_source[f] !== undefined ? m.key_source[f] : (f === 'method' ? 'GET' : '');
    const list = $('m-key-list');
    const existing = m ? m.api_keys || [] : [];
    $('m-existing-keys').hidden = existing.length === 0;
    fill(list, existing.map((k, i) => h('label', { class: 'check' },
      h('input', { type: 'checkbox', checked: true, name: 'keep', value: k.id, id: 'keep-' + i }), ' ', h('span', { class: 'mono' }, k.masked), ' ', h('span', { class: 'muted small' }, t(k.status || 'enabled')))));
    dlg.showModal();
    form.elements.model_id.focus();
  }

  function body() {
    const b = {};
    // Send what is filled in, and what was cleared; a field this keygate
    // does not know (api_version before it has Azure) is sent only when set.
    const had = (f) => editing && editing[f] !== undefined;
    for (const f of plain) {
      const v = form.elements[f].value.trim();
      if (v || had(f)) b[f] = v;
    }
    for (const f of numbers) {
      const v = form.elements[f].value.trim();
      if (v !== '') b[f] = Number(v);
      else if (had(f)) b[f] = 0;
    }
    b.fallbacks = form.elements.fallbacks.value.split(',').map((s) => s.trim()).filter(Boolean);
    const keys = [...form.querySelectorAll('input[name="keep"]:checked')].map((c) => ({ id: c.value }));
    for (const line of form.elements.api_keys.value.split(/\r?\n/)) {
      const k = line.trim();
      if (k && !k.startsWith('#')) keys.push({ key: k });
    }
    b.api_keys = keys;
    const url = $(ks.url).value.trim();
    if (url) {
      // Keep the stored key source's other fields (headers, timeouts) as they are.
      const src = Object.assign({}, editing && editing.key_source ? editing.key_source : {});
      src.url = url;
      src.scene_code = $(ks.scene_code).value.trim();
      src.method = $(ks.method).value;
      for (const f of ['expire_seconds', 'refresh_before_seconds']) {
        const v = $(ks[f]).value.trim();
        if (v !== '') src[f] = Number(v); else delete src[f];
      }
      b.key_source = src;
    } else if (editing) {
      b.key_source = null;
    }
    return b;
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      if (editing) await api('PUT', '/api/v1/llm-models/' + editing.id, body());
      else await api('POST', '/api/v1/llm-models', body());
      dlg.close();
      flash(editing ? t('Model saved.') : t('Model created.'));
      load();
    } catch (e) {
      showErrors(form, $('model-error'), e.message);
    }
  });

  async function remove(m) {
    if (!confirm(t('Delete model {m}? Its keys stop serving it at once.', { m: m.model_id }))) return;
    try { await api('DELETE', '/api/v1/llm-models/' + m.id); flash(t('Model deleted.')); } catch (e) { flash(e.message, 'bad'); }
    load();
  }

  $('new-model').addEventListener('click', () => open(null));
  load();
})();
