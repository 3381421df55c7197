// The plugins list (filters, search, bulk enable/disable), the hooks page
// (with a dispatch tester), the activity timeline and doctor's findings.

import * as api from './api.js';
import { h, fill, announce, toast, when, ms, panel, describeError, uid } from './dom.js';
import { stateBadge, trustBadge, healthBadge, kindLabel, eventSummary, STATE_NAMES, stateLabel } from './words.js';

const RUNTIMES = ['component', 'extism', 'process', 'native'];
const LEVELS = ['internal', 'partner', 'untrusted'];

function select(id, label, options, value) {
  return h('div', { class: 'control' },
    h('label', { for: id }, label),
    h('select', { id },
      h('option', { value: '' }, 'All'),
      options.map(([v, text]) => h('option', { value: v, selected: v === value }, text))));
}

/** The heading row of a page. */
export function pageHead(title, subtitle, ...actions) {
  return h('div', { class: 'page-head' },
    h('div', {}, h('h1', {}, title), subtitle ? h('p', { class: 'subtitle' }, subtitle) : null),
    h('div', { class: 'actions' }, actions));
}

export async function pluginsView(view, ctx, still) {
  const filters = { q: '', state: '', runtime: '', trust: '' };
  const selected = new Set();
  const count = h('span', { class: 'count' });
  const tbody = h('tbody');
  const bulk = h('div', { class: 'bulk', hidden: true, role: 'region', 'aria-label': 'Bulk actions' });
  const searchId = uid('search');
  const search = h('input', { id: searchId, type: 'search', placeholder: 'Name, id or description', autocomplete: 'off' });
  const toolbar = h('div', { class: 'toolbar', role: 'search' },
    h('div', { class: 'control grow' }, h('label', { for: searchId }, 'Search'), search),
    select('filter-state', 'State', STATE_NAMES.filter((s) => s !== 'removed').map((s) => [s, stateLabel(s)]), ''),
    select('filter-runtime', 'Runtime', RUNTIMES.map((r) => [r, r]), ''),
    select('filter-trust', 'Trust', LEVELS.map((l) => [l, l[0].toUpperCase() + l.slice(1)]), ''));
  const all = h('input', { type: 'checkbox', id: 'select-all', 'aria-label': 'Select every plugin shown' });
  const canOperate = ctx.can('operator');
  const table = h('table', { class: 'table plugins' },
    h('caption', { class: 'sr-only' }, 'Installed plugins'),
    h('thead', {}, h('tr', {},
      canOperate ? h('th', { class: 'check' }, all) : null,
      h('th', { scope: 'col' }, 'Plugin'),
      h('th', { scope: 'col' }, 'Version'),
      h('th', { scope: 'col' }, 'State'),
      h('th', { scope: 'col' }, 'Trust'),
      h('th', { scope: 'col' }, 'Health'),
      h('th', { scope: 'col', class: 'num' }, 'Calls'),
      h('th', { scope: 'col' }, 'Updated'))),
    tbody);
  fill(view,
    pageHead('Plugins', count,
      ctx.can('admin') ? h('a', { class: 'button primary', href: '#/install' }, 'Install plugin') : null),
    toolbar, bulk, h('div', { class: 'card flush' }, table));

  let shown = [];
  const load = async () => {
    const query = new URLSearchParams();
    if (filters.q) query.set('q', filters.q);
    if (filters.state) query.set('state', filters.state);
    if (filters.runtime) query.set('runtime', filters.runtime);
    const [list, stats] = await Promise.all([api.get(`plugins?${query}`), api.get('stats').catch(() => ({ plugins: [] }))]);
    if (!still()) return;
    const byId = new Map(stats.plugins.map((s) => [s.plugin, s]));
    shown = list.plugins.filter((p) => !filters.trust || (p.trust && p.trust.level === filters.trust));
    for (const id of [...selected]) if (!shown.some((p) => p.id === id)) selected.delete(id);
    count.textContent = `${shown.length} ${shown.length === 1 ? 'plugin' : 'plugins'}${filters.q || filters.state || filters.runtime || filters.trust ? ' match' : ' installed'}`;
    if (!shown.length) {
      const filtered = filters.q || filters.state || filters.runtime || filters.trust;
      fill(tbody, h('tr', {}, h('td', { colspan: 8, class: 'empty-row' },
        filtered ? 'No plugin matches these filters.' : 'No plugins are installed yet.',
        !filtered && ctx.can('admin') ? [' ', h('a', { href: '#/install' }, 'Install one')] : null)));
    } else {
      fill(tbody, shown.map((p) => row(p, byId.get(p.id))));
    }
    syncBulk();
  };

  const row = (p, stats) => {
    const link = h('a', { href: `#/plugins/${p.id}`, class: 'plugin-name' }, p.name);
    const box = h('input', { type: 'checkbox', 'aria-label': `Select ${p.name}`, checked: selected.has(p.id) });
    box.addEventListener('change', () => {
      if (box.checked) selected.add(p.id);
      else selected.delete(p.id);
      syncBulk();
    });
    return h('tr', { 'data-plugin': p.id },
      canOperate ? h('td', { class: 'check' }, box) : null,
      h('td', {}, h('div', { class: 'plugin-cell' },
        link, h('span', { class: 'muted mono' }, p.id),
        p.description ? h('span', { class: 'desc' }, p.description) : null,
        p.last_error ? h('span', { class: 'error-text' }, p.last_error.message) : null)),
      h('td', { class: 'mono' }, p.version, h('div', { class: 'muted small' }, p.runtime)),
      h('td', {}, stateBadge(p.state)),
      h('td', {}, trustBadge(p.trust)),
      h('td', {}, healthBadge(stats && stats.health)),
      h('td', { class: 'num' }, stats ? String(stats.execution.count) : '0'),
      h('td', { class: 'muted' }, when(p.updated_at)));
  };

  const syncBulk = () => {
    all.checked = shown.length > 0 && shown.every((p) => selected.has(p.id));
    all.indeterminate = selected.size > 0 && !all.checked;
    bulk.hidden = selected.size === 0;
    if (bulk.hidden) return;
    fill(bulk,
      h('span', {}, `${selected.size} selected`),
      h('button', { type: 'button', class: 'secondary small', onclick: () => bulkAction('enable') }, 'Enable'),
      h('button', { type: 'button', class: 'secondary small', onclick: () => bulkAction('disable') }, 'Disable'),
      h('button', { type: 'button', class: 'ghost small', onclick: () => { selected.clear(); load(); } }, 'Clear selection'));
  };

  const bulkAction = async (action) => {
    const ids = [...selected];
    const failures = [];
    for (const id of ids) {
      try {
        await api.post(`${api.pluginPath(id)}/${action}`, action === 'disable' ? { cascade: false } : undefined);
      } catch (error) {
        failures.push(`${id}: ${describeError(error)}`);
      }
    }
    const done = ids.length - failures.length;
    const verb = action === 'enable' ? 'Enabled' : 'Disabled';
    if (done) toast(`${verb} ${done} ${done === 1 ? 'plugin' : 'plugins'}`);
    for (const failure of failures) toast(failure, 'error');
    announce(`${verb} ${done} of ${ids.length}`);
    selected.clear();
    await load();
  };

  all.addEventListener('change', () => {
    for (const p of shown) {
      if (all.checked) selected.add(p.id);
      else selected.delete(p.id);
    }
    load();
  });
  let timer = null;
  search.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      filters.q = search.value.trim();
      load();
    }, 200);
  });
  for (const [id, key] of [['filter-state', 'state'], ['filter-runtime', 'runtime'], ['filter-trust', 'trust']]) {
    view.querySelector(`#${id}`).addEventListener('change', (event) => {
      filters[key] = event.target.value;
      load();
    });
  }
  let pending = null;
  ctx.onEvent((kind, event) => {
    if (!event.plugin || kind === 'api.request') return;
    clearTimeout(pending);
    pending = setTimeout(() => still() && load(), 300);
  });
  await load();
}

/** A list of events, newest first; `prepend` adds a live one on top. */
export function timeline(label, { showPlugin = true } = {}) {
  const list = h('ol', { class: 'timeline', 'aria-label': label, 'aria-live': 'polite', 'aria-relevant': 'additions' });
  const item = (event, live) => {
    const failed = event.status && event.status !== 'ok';
    const receipt = event.kind === 'hook';
    return h('li', { class: `event${live ? ' fresh' : ''}`, 'data-kind': event.kind, 'data-cursor': event.cursor },
      h('span', { class: `marker ${failed ? 'bad' : receipt ? 'info' : 'ok'}`, 'aria-hidden': 'true' }),
      h('div', { class: 'event-body' },
        h('div', { class: 'event-head' },
          h('strong', {}, kindLabel(event.kind)),
          event.plugin && showPlugin ? h('a', { href: `#/plugins/${event.plugin}`, class: 'muted mono small' }, event.plugin) : null,
          event.version ? h('span', { class: 'muted small mono' }, event.version) : null,
          failed ? h('span', { class: 'badge bad' }, event.status) : null,
          h('span', { class: 'muted small right' }, when(event.at))),
        h('div', { class: 'event-detail' }, eventSummary(event) || '')));
  };
  return {
    element: list,
    set(events, { keepLive = true } = {}) {
      // Live items that arrived while the page was loading stay, marked
      // fresh, on top of the loaded page; loaded copies of them are skipped.
      // A new filter (`keepLive: false`) starts from the loaded page alone.
      const live = keepLive ? [...list.querySelectorAll('.event.fresh')] : [];
      const seen = new Set(live.map((li) => li.dataset.cursor).filter(Boolean));
      const loaded = events.filter((e) => !(e.cursor && seen.has(e.cursor))).map((e) => item(e, false));
      if (!live.length && !loaded.length) fill(list, h('li', { class: 'empty-row' }, 'Nothing recorded yet.'));
      else fill(list, [...live, ...loaded]);
      list.dataset.loaded = 'true';
    },
    prepend(event) {
      const empty = list.querySelector('.empty-row');
      if (empty) empty.remove();
      if (event.cursor && list.querySelector(`[data-cursor="${CSS.escape(event.cursor)}"]`)) return;
      list.prepend(item(event, true));
      while (list.children.length > 200) list.lastChild.remove();
    },
  };
}

export async function activityView(view, ctx, still) {
  const kinds = ['', 'hook', 'api.request', 'state_changed', 'config_changed', 'granted', 'version_changed', 'error'];
  const kindSelect = h('select', { id: 'activity-kind' }, kinds.map((k) => h('option', { value: k }, k ? kindLabel(k) : 'All kinds')));
  const events = timeline('Events, newest first');
  fill(view,
    pageHead('Activity', 'Everything the engine records, live as it happens.'),
    h('div', { class: 'toolbar' }, h('div', { class: 'control' }, h('label', { for: 'activity-kind' }, 'Kind'), kindSelect)),
    h('div', { class: 'card' }, events.element));
  const load = async (keepLive = true) => {
    const query = new URLSearchParams({ limit: '100' });
    if (kindSelect.value) query.set('kind', kindSelect.value);
    const page = await api.get(`events?${query}`);
    if (still()) events.set(page.events, { keepLive });
  };
  kindSelect.addEventListener('change', () => load(false));
  ctx.onEvent((kind, event) => {
    if (!kindSelect.value || kindSelect.value === kind) events.prepend(event);
  });
  await load();
}

export async function hooksView(view, ctx, still) {
  const { hooks } = await api.get('hooks');
  if (!still()) return;
  const canDispatch = ctx.can('operator');
  const result = h('div', { class: 'dispatch-result', 'aria-live': 'polite' });
  const hookSelect = h('select', { id: 'dispatch-hook' }, hooks.map((hk) => h('option', { value: hk.name }, `${hk.name} (${hk.handlers.length})`)));
  const data = h('textarea', { id: 'dispatch-data', rows: 5, spellcheck: 'false', class: 'mono' }, '{"content": "hello"}');
  const dataError = h('p', { class: 'field-error', id: 'dispatch-data-error' });
  data.setAttribute('aria-describedby', 'dispatch-data-error');
  const send = h('button', { type: 'submit', class: 'primary' }, 'Dispatch');
  const form = h('form', { class: 'stack', novalidate: true },
    h('div', { class: 'control' }, h('label', { for: 'dispatch-hook' }, 'Hook'), hookSelect),
    h('div', { class: 'control' }, h('label', { for: 'dispatch-data' }, 'Data (JSON)'), data, dataError),
    h('div', {}, send));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    dataError.textContent = '';
    let parsed;
    try {
      parsed = data.value.trim() ? JSON.parse(data.value) : null;
    } catch (error) {
      dataError.textContent = `Not JSON: ${error.message}`;
      data.setAttribute('aria-invalid', 'true');
      data.focus();
      return;
    }
    data.removeAttribute('aria-invalid');
    send.disabled = true;
    try {
      const outcome = await api.post(`hooks/${encodeURIComponent(hookSelect.value)}/dispatch`, { data: parsed });
      fill(result, dispatchOutcome(outcome));
      announce(`Dispatched ${outcome.hook}: ${outcome.receipts.length} receipts`);
    } catch (error) {
      fill(result, h('p', { class: 'error-text' }, describeError(error)));
    } finally {
      send.disabled = false;
    }
  });
  const table = h('table', { class: 'table' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Hook'), h('th', { scope: 'col' }, 'Handled by'), h('th', { scope: 'col' }, 'Handlers may'), h('th', { scope: 'col', class: 'num' }, 'Timeout'))),
    h('tbody', {}, hooks.map((hk) => h('tr', {},
      h('td', { class: 'mono' }, hk.name),
      h('td', {}, hk.handlers.length ? hk.handlers.map((x) => h('a', { class: 'chip', href: `#/plugins/${x.plugin}` }, x.plugin)) : h('span', { class: 'muted' }, 'none')),
      h('td', { class: 'small' }, [hk.mutable ? 'change data' : 'only observe', hk.can_block ? 'block' : null].filter(Boolean).join(', ')),
      h('td', { class: 'num' }, `${hk.default_timeout_ms} ms`)))));
  fill(view,
    pageHead('Hooks', 'The host’s extension points and the plugins handling each.'),
    h('div', { class: 'grid hooks' },
      h('div', { class: 'card flush' }, table),
      canDispatch ? panel('Test a hook', h('p', { class: 'muted' }, 'Dispatches the hook with your data, as the host would, and shows each handler’s receipt.'), form, result) : null));
}

/** The answer of a dispatch: final data and one receipt per handler. */
export function dispatchOutcome(outcome) {
  return h('div', { class: 'stack' },
    h('p', {}, h('strong', {}, outcome.blocked ? 'Blocked' : 'Continued'), ` in ${ms(outcome.elapsed_ms)}`,
      outcome.blocked ? ` by ${outcome.blocked.plugin}${outcome.blocked.reason ? ': ' + outcome.blocked.reason : ''}` : ''),
    outcome.receipts.length
      ? h('ul', { class: 'receipts' }, outcome.receipts.map((r) => h('li', {},
        h('span', { class: `badge ${r.status === 'ok' ? 'ok' : r.status === 'skipped' ? 'muted' : 'bad'}` }, r.status),
        h('span', { class: 'mono' }, r.plugin),
        h('span', { class: 'muted' }, `${(r.duration_us / 1000).toFixed(2)} ms`),
        r.error ? h('span', { class: 'error-text' }, r.error) : null)))
      : h('p', { class: 'muted' }, 'No plugin handles this hook.'),
    h('details', {}, h('summary', {}, 'Final data'), h('pre', { class: 'mono' }, JSON.stringify(outcome.data, null, 2))));
}

export async function doctorView(view, ctx, still) {
  const report = await api.get('doctor');
  if (!still()) return;
  const troubled = report.plugins.filter((p) => p.problems.length);
  fill(view,
    pageHead('Doctor', report.healthy ? 'Nothing needs attention.' : 'Some things need attention.'),
    h('div', { class: 'grid two' },
      panel('Host',
        h('dl', { class: 'facts' },
          h('dt', {}, 'Name'), h('dd', {}, `${report.host.name} ${report.host.version || ''}`),
          h('dt', {}, 'Tenant'), h('dd', {}, report.host.tenant),
          h('dt', {}, 'Runtimes'), h('dd', {}, report.host.runtimes.join(', ')),
          h('dt', {}, 'Safe mode'), h('dd', {}, report.host.safe_mode ? 'yes' : 'no')),
        report.host.problems.length ? h('ul', { class: 'problems' }, report.host.problems.map((p) => h('li', {}, p))) : null),
      panel('Registry',
        h('dl', { class: 'facts' },
          h('dt', {}, 'Backend'), h('dd', {}, report.registry.backend),
          h('dt', {}, 'Schema'), h('dd', {}, String(report.registry.schema_version)),
          h('dt', {}, 'Events written'), h('dd', {}, String(report.registry.events_written)),
          h('dt', {}, 'Events dropped'), h('dd', {}, String(report.registry.events_dropped))))),
    panel('Plugins',
      troubled.length
        ? h('ul', { class: 'findings' }, troubled.map((p) => h('li', {},
          h('a', { href: `#/plugins/${p.id}` }, p.id), ' ', stateBadge(p.state),
          h('ul', { class: 'problems' }, p.problems.map((x) => h('li', {}, x))))))
        : h('p', { class: 'muted' }, report.plugins.length === 1 ? 'The installed plugin is fine.' : report.plugins.length ? `All ${report.plugins.length} installed plugins are fine.` : 'No plugins are installed.')));
}
