// Users: create and delete the people who sign in.
'use strict';
(function () {
  const { t, api, h, time, fill, flash, showErrors } = window.KG;
  const $ = (id) => document.getElementById(id);
  const form = $('user-form');

  async function load() {
    let list;
    try { list = (await api('GET', '/api/v1/users')).data; } catch (e) { flash(e.message, 'bad'); return; }
    const heads = [...document.querySelectorAll('#users-table thead th')].map((th) => th.textContent.trim());
    if (!list.length) { fill($('users-body'), h('tr', {}, h('td', { colspan: 5, class: 'muted' }, t('No users yet.')))); return; }
    fill($('users-body'), list.map((u) => h('tr', { dataset: { username: u.username } },
      h('td', { 'data-label': heads[0] }, String(u.id)),
      h('td', { 'data-label': heads[1] }, h('strong', {}, u.username)),
      h('td', { 'data-label': heads[2] }, h('span', { class: 'badge ' + (u.role === 'admin' ? 'warning' : 'unused') }, t(u.role))),
      h('td', { 'data-label': heads[3] }, time(u.created_at)),
      h('td', { class: 'actions' }, h('button', { type: 'button', class: 'btn small danger', onclick: () => remove(u) }, t('Delete'))))));
  }

  async function remove(u) {
    if (!confirm(t('Delete user {u}? Their sign-ins end at once.', { u: u.username }))) return;
    try { await api('DELETE', '/api/v1/users/' + u.id); flash(t('User deleted.')); } catch (e) { flash(e.message, 'bad'); }
    load();
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const b = { username: form.elements.username.value.trim(), password: form.elements.password.value, role: form.elements.role.value };
    try {
      await api('POST', '/api/v1/users', b);
      showErrors(form, $('user-error'), '');
      form.reset();
      flash(t('User created.'));
      load();
    } catch (e) { showErrors(form, $('user-error'), e.message); }
  });
  load();
})();
