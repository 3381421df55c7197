// The admin page: sign-in, the top bar, the hash router and the live
// event stream the views subscribe to. Every view is a client of the
// admin API (api.js); nothing is stored but the token, in sessionStorage.

import * as api from './api.js';
import { h, fill, announce, toast, describeError } from './dom.js';
import { allows } from './words.js';
import { pluginsView } from './plugins.js';
import { detailView } from './detail.js';
import { installView } from './install.js';
import { hooksView, activityView, doctorView } from './plugins.js';

const main = document.getElementById('main');
const topbar = document.getElementById('topbar');

/** What every view gets: who is signed in, the live events, navigation. */
const ctx = {
  session: null,
  listeners: new Set(),
  can(role) {
    return this.session !== null && allows(this.session.role, role);
  },
  /** Calls `callback(kind, event)` for each live event until the view changes. */
  onEvent(callback) {
    this.listeners.add(callback);
    viewListeners.push(callback);
  },
  go(hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
  },
};
let viewListeners = [];
let stream = null;

function setLive(state) {
  const live = document.getElementById('live');
  const text = document.getElementById('live-text');
  live.dataset.state = state;
  text.textContent = { live: 'Live', reconnecting: 'Reconnecting…', stopped: 'Offline' }[state] || state;
}

function startStream() {
  if (stream) stream.stop();
  stream = api.follow((kind, event) => {
    for (const listener of ctx.listeners) {
      try {
        listener(kind, event);
      } catch (error) {
        console.error('a view failed on a live event', error);
      }
    }
  }, setLive);
}

function signOut(message) {
  api.token.clear();
  if (stream) stream.stop();
  stream = null;
  ctx.session = null;
  ctx.listeners.clear();
  topbar.hidden = true;
  showSignIn(message);
}

api.whenSignedOut((error) => {
  if (ctx.session) signOut(error.code === 'bad_token' ? 'Your token is unknown or was revoked. Sign in with another.' : describeError(error));
});

function showSignIn(message) {
  document.title = 'Sign in — Tenon';
  const error = h('p', { class: 'field-error', id: 'signin-error', role: 'alert' }, message || '');
  const input = h('input', {
    id: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true,
    'aria-describedby': 'token-help signin-error', placeholder: 'tenon_…',
  });
  const button = h('button', { type: 'submit', class: 'primary wide' }, 'Sign in');
  const form = h('form', { class: 'signin-card', novalidate: true },
    h('div', { class: 'brand large' }, h('img', { src: 'ui/favicon.svg', alt: '', width: 36, height: 36 }), h('span', {}, 'Tenon')),
    h('h1', {}, 'Sign in to manage plugins'),
    h('label', { for: 'token' }, 'API token'),
    input,
    h('p', { class: 'help', id: 'token-help' },
      'Make one on the server with ', h('code', {}, 'tenon token create NAME --role admin'),
      '. It is kept in this tab only and sent as a bearer header.'),
    error,
    button);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const value = input.value.trim();
    if (!value) {
      error.textContent = 'Enter a token.';
      input.focus();
      return;
    }
    button.disabled = true;
    api.token.set(value);
    try {
      ctx.session = await api.get('session');
      input.value = '';
      start();
    } catch (failure) {
      api.token.clear();
      error.textContent = failure.code === 'bad_token' ? 'This token is unknown or was revoked.' : describeError(failure);
      input.select();
    } finally {
      button.disabled = false;
    }
  });
  fill(main, h('div', { class: 'signin' }, form));
  input.focus();
}

function start() {
  topbar.hidden = false;
  document.getElementById('who-name').textContent = ctx.session.name;
  const role = document.getElementById('who-role');
  role.textContent = ctx.session.role;
  role.dataset.role = ctx.session.role;
  role.title = {
    viewer: 'Viewer: may read plugins, events, statistics and doctor',
    operator: 'Operator: may also configure, enable, disable and dispatch hooks',
    admin: 'Admin: may also install, upgrade, roll back, uninstall, grant and revoke',
  }[ctx.session.role];
  document.querySelector('[data-nav="install"]').hidden = !ctx.can('admin');
  startStream();
  if (!location.hash || location.hash === '#') location.hash = '#/plugins';
  else route();
}

let current = 0;
async function route() {
  if (!ctx.session) return;
  const serial = ++current;
  for (const listener of viewListeners) ctx.listeners.delete(listener);
  viewListeners = [];
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  const section = parts[0] || 'plugins';
  for (const link of document.querySelectorAll('[data-nav]')) {
    if (link.dataset.nav === section) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const view = h('div', { class: 'view' });
  fill(main, view);
  const still = () => serial === current;
  try {
    if (section === 'plugins' && parts.length >= 3) {
      await detailView(view, ctx, `${parts[1]}/${parts[2]}`, parts[3] || 'overview', still);
    } else if (section === 'install') {
      await installView(view, ctx, still);
    } else if (section === 'hooks') {
      await hooksView(view, ctx, still);
    } else if (section === 'activity') {
      await activityView(view, ctx, still);
    } else if (section === 'doctor') {
      await doctorView(view, ctx, still);
    } else {
      await pluginsView(view, ctx, still);
    }
    const heading = view.querySelector('h1');
    document.title = `${heading ? heading.textContent : 'Plugins'} — Tenon`;
  } catch (error) {
    if (!still() || !ctx.session) return;
    fill(view, h('div', { class: 'empty' }, h('h1', {}, 'This page could not be shown'), h('p', {}, describeError(error))));
  }
}

window.addEventListener('hashchange', () => {
  route();
  main.focus({ preventScroll: true });
});
document.getElementById('signout').addEventListener('click', () => {
  signOut('Signed out.');
  announce('Signed out');
});

(async () => {
  if (!api.token.get()) return showSignIn();
  try {
    ctx.session = await api.get('session');
    start();
  } catch (error) {
    api.token.clear();
    showSignIn(error.code === 'bad_token' ? '' : describeError(error));
  }
})();

export { toast };
