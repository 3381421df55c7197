// Small DOM helpers: elements are built with text nodes only (data from
// the API never becomes markup), toasts, an announcer for screen readers,
// a confirmation dialog, and formatting.

/**
 * h('button', {class: 'primary', onclick: fn}, 'Save'): attributes
 * starting with `on` become listeners; `true`/`false` toggle boolean
 * attributes; children are nodes or text.
 */
export function h(tag, attrs, ...children) {
  const el = tag.startsWith('svg:')
    ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
    : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(key, '');
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let idCounter = 0;
/** A fresh element id. */
export const uid = (prefix) => `${prefix}-${++idCounter}`;

/** Says `text` to screen readers (the page's polite live region). */
export function announce(text) {
  const region = document.getElementById('announce');
  region.textContent = '';
  setTimeout(() => {
    region.textContent = text;
  }, 30);
}

/** A short message in the corner; errors stay until dismissed. */
export function toast(text, kind = 'ok') {
  const box = document.getElementById('toasts');
  const item = h('div', { class: `toast ${kind}` },
    h('span', {}, text),
    h('button', { type: 'button', class: 'ghost small', 'aria-label': 'Dismiss', onclick: () => item.remove() }, '×'));
  box.append(item);
  while (box.children.length > 3) box.firstChild.remove();
  if (kind !== 'error') setTimeout(() => item.remove(), 5000);
}

/**
 * A modal confirmation: resolves true when confirmed. `body` is a node.
 */
export function confirmDialog({ title, body, confirm = 'Confirm', danger = false }) {
  return new Promise((resolve) => {
    const titleId = uid('dialog-title');
    const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': titleId },
      h('h2', { id: titleId }, title),
      h('div', { class: 'dialog-body' }, body),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'secondary', value: 'cancel', onclick: () => dialog.close('cancel') }, 'Cancel'),
        h('button', { type: 'button', class: danger ? 'danger' : 'primary', value: 'ok', onclick: () => dialog.close('ok') }, confirm)));
    dialog.addEventListener('close', () => {
      resolve(dialog.returnValue === 'ok');
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** "3 min ago", with the exact time as a tooltip. */
export function when(iso) {
  if (!iso) return '';
  const at = new Date(iso);
  const seconds = Math.round((Date.now() - at.getTime()) / 1000);
  let text;
  if (seconds < 5) text = 'just now';
  else if (seconds < 60) text = `${seconds} s ago`;
  else if (seconds < 3600) text = `${Math.floor(seconds / 60)} min ago`;
  else if (seconds < 86400) text = `${Math.floor(seconds / 3600)} h ago`;
  else text = at.toLocaleDateString();
  return h('time', { datetime: iso, title: at.toLocaleString() }, text);
}

/** Milliseconds in words. */
export function ms(value) {
  if (value === undefined || value === null) return '—';
  if (value < 1) return `${(value * 1000).toFixed(0)} µs`;
  if (value < 1000) return `${value.toFixed(value < 10 ? 1 : 0)} ms`;
  return `${(value / 1000).toFixed(2)} s`;
}

/** Bytes in words. */
export function bytes(value) {
  if (value === undefined || value === null) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let n = value;
  let unit = 0;
  while (n >= 1024 && unit < units.length - 1) {
    n /= 1024;
    unit += 1;
  }
  return `${n.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

/** A label/value list. */
export function facts(rows) {
  return h('dl', { class: 'facts' }, rows.filter(Boolean).map(([label, value]) => [h('dt', {}, label), h('dd', {}, value)]));
}

/** A panel with a heading. */
export function panel(title, ...children) {
  const id = uid('panel');
  return h('section', { class: 'panel', 'aria-labelledby': id }, h('h2', { id }, title), children);
}

/** The message of an error, for people. */
export function describeError(error) {
  return error && error.message ? error.message : String(error);
}
