// One plugin: overview (manifest, trust posture, health, statistics and a
// chart of its recent calls, doctor's findings), permissions in plain
// words with grant and revoke, the config form generated from its schema,
// versions with upgrade and rollback (each confirmed side by side), and
// its events timeline, live.

import * as api from './api.js';
import { h, fill, announce, toast, when, ms, bytes, facts, panel, confirmDialog, describeError, uid } from './dom.js';
import {
  stateBadge, trustBadge, healthBadge, permissionWords, permissionArea, areaLabel, checkedWords,
} from './words.js';
import { timeline } from './plugins.js';

const TABS = [
  ['overview', 'Overview'],
  ['permissions', 'Permissions'],
  ['config', 'Configuration'],
  ['versions', 'Versions'],
  ['activity', 'Activity'],
];

export async function detailView(view, ctx, id, tab, still) {
  const path = api.pluginPath(id);
  let plugin = await api.get(path);
  if (!still()) return;
  const head = h('div');
  const body = h('div', { class: 'tab-body', id: 'tab-body' });
  const renderHead = () => fill(head, header(plugin, ctx, path, reload));
  const reload = async () => {
    plugin = await api.get(path);
    if (!still()) return;
    renderHead();
    await renderTab();
  };
  const refreshHead = async () => {
    plugin = await api.get(path);
    if (still()) renderHead();
  };
  const renderTab = async () => {
    const render = {
      overview: overviewTab, permissions: permissionsTab, config: configTab, versions: versionsTab, activity: activityTab,
    }[tab] || overviewTab;
    await render(body, plugin, ctx, { path, reload, still });
  };
  const nav = h('nav', { class: 'tabs', 'aria-label': 'Plugin sections' },
    TABS.map(([key, label]) => h('a', {
      href: `#/plugins/${id}/${key}`, 'aria-current': key === tab ? 'page' : false, 'data-tab': key,
    }, label,
    key === 'config' && plugin.config.missing.length ? h('span', { class: 'dot warn', title: 'Required settings missing' }) : null,
    key === 'permissions' && plugin.permissions.missing.length ? h('span', { class: 'dot warn', title: 'Permissions not granted' }) : null)));
  fill(view,
    h('p', { class: 'crumbs' }, h('a', { href: '#/plugins' }, 'Plugins'), ' / ', h('span', {}, plugin.name)),
    head, nav, body);
  renderHead();
  let pending = null;
  ctx.onEvent((kind, event) => {
    if (event.plugin !== id || kind === 'hook' || kind === 'api.request') return;
    clearTimeout(pending);
    pending = setTimeout(() => still() && refreshHead(), 250);
  });
  await renderTab();
}

function header(plugin, ctx, path, reload) {
  const act = async (button, action, body, message) => {
    button.disabled = true;
    try {
      await api.post(`${path}/${action}`, body);
      toast(message);
      announce(message);
      await reload();
    } catch (error) {
      toast(describeError(error), 'error');
      button.disabled = false;
    }
  };
  const actions = [];
  if (ctx.can('operator')) {
    if (plugin.enabled && plugin.state !== 'disabled') {
      const b = h('button', { type: 'button', class: 'secondary', id: 'disable' }, 'Disable');
      b.addEventListener('click', () => act(b, 'disable', { cascade: false }, `Disabled ${plugin.name}`));
      actions.push(b);
    } else {
      const b = h('button', { type: 'button', class: 'primary', id: 'enable' }, 'Enable');
      b.addEventListener('click', () => act(b, 'enable', undefined, `Enabled ${plugin.name}`));
      actions.push(b);
    }
  }
  if (ctx.can('admin')) {
    const b = h('button', { type: 'button', class: 'ghost danger-text', id: 'uninstall', disabled: plugin.state === 'active', title: plugin.state === 'active' ? 'Disable it first' : null }, 'Uninstall');
    b.addEventListener('click', async () => {
      const purge = h('input', { type: 'checkbox', id: 'purge' });
      const ok = await confirmDialog({
        title: `Uninstall ${plugin.name}?`,
        body: h('div', { class: 'stack' },
          h('p', {}, `Every installed version of ${plugin.id} is removed.`),
          h('label', { class: 'check-label' }, purge, ' Also delete its config, stored data and events')),
        confirm: 'Uninstall', danger: true,
      });
      if (!ok) return;
      try {
        await api.del(`${path}${purge.checked ? '?purge=all' : ''}`);
        toast(`Uninstalled ${plugin.name}`);
        location.hash = '#/plugins';
      } catch (error) {
        toast(describeError(error), 'error');
      }
    });
    actions.push(b);
  }
  return h('div', { class: 'page-head detail-head' },
    h('div', {},
      h('h1', {}, plugin.name, h('span', { class: 'version mono' }, plugin.version)),
      h('p', { class: 'subtitle mono' }, plugin.id),
      h('div', { class: 'badges' },
        h('span', { id: 'plugin-state' }, stateBadge(plugin.state)),
        trustBadge(plugin.trust),
        healthBadge(plugin.stats && plugin.stats.health, 'Health: '),
        h('span', { class: 'badge neutral' }, plugin.runtime))),
    h('div', { class: 'actions' }, actions));
}

// ---------------------------------------------------------------- overview

async function overviewTab(body, plugin, ctx, { still }) {
  const m = plugin.manifest || {};
  const meta = m.plugin || {};
  const stats = plugin.stats;
  const chartBox = h('div', { class: 'chart-box' }, h('p', { class: 'muted' }, 'Loading calls…'));
  const findings = h('div', {}, h('p', { class: 'muted' }, 'Asking doctor…'));
  const posture = plugin.trust && plugin.trust.posture;
  fill(body, h('div', { class: 'grid two' },
    h('div', { class: 'stack' },
      plugin.last_error ? h('div', { class: 'notice bad', role: 'alert' }, h('strong', {}, 'Last error: '), plugin.last_error.message) : null,
      plugin.config.missing.length ? h('div', { class: 'notice warn' }, 'Required settings missing: ', plugin.config.missing.join(', '), '. ', h('a', { href: `#/plugins/${plugin.id}/config` }, 'Configure')) : null,
      plugin.permissions.missing.length ? h('div', { class: 'notice warn' }, `${plugin.permissions.missing.length} permission(s) not granted. `, h('a', { href: `#/plugins/${plugin.id}/permissions` }, 'Review')) : null,
      panel('About',
        meta.description ? h('p', {}, meta.description) : null,
        facts([
          ['Version', plugin.version],
          ['Runtime', plugin.runtime],
          ['Source', `${plugin.source.kind}${plugin.source.reference ? ': ' + plugin.source.reference : ''}`],
          meta.authors && meta.authors.length ? ['Authors', meta.authors.join(', ')] : null,
          meta.license ? ['License', meta.license] : null,
          meta.keywords && meta.keywords.length ? ['Keywords', meta.keywords.join(', ')] : null,
          ['Hooks', (m.hooks || []).map((x) => x.name).join(', ') || 'none'],
          m.commands && m.commands.length ? ['Commands', m.commands.map((c) => c.name).join(', ')] : null,
          ['Updated', when(plugin.updated_at)],
        ])),
      panel('Trust and isolation',
        facts([
          ['Trust level', trustBadge(plugin.trust)],
          plugin.trust ? ['Origin', checkedWords(plugin.trust.checked)] : null,
          plugin.trust && plugin.trust.signers && plugin.trust.signers.length ? ['Signed by', plugin.trust.signers.map((s) => `${s.role} key ${s.key_id}`).join(', ')] : null,
          posture ? ['Runs as', posture.execution] : null,
          posture ? ['Isolation', posture.isolation] : null,
        ]),
        posture && posture.limitations.length ? h('ul', { class: 'plain-list' }, posture.limitations.map((l) => h('li', {}, l))) : null)),
    h('div', { class: 'stack' },
      panel('Health and statistics',
        stats ? h('div', { class: 'figures' },
          figure('Calls', String(stats.execution.count)),
          figure('Errors', String(stats.execution.error_count + stats.execution.rejected_count), stats.execution.error_count ? 'bad' : ''),
          figure('Timeouts', String(stats.execution.timeout_count), stats.execution.timeout_count ? 'bad' : ''),
          figure('Average', ms(stats.execution.avg_duration_ms)),
          figure('Slowest', ms(stats.execution.max_duration_ms)),
          figure('KV', bytes(stats.resources && stats.resources.kv_bytes)))
          : h('p', { class: 'muted' }, 'No hook calls recorded yet.'),
        stats ? h('p', { class: 'muted small' }, healthBadge(stats.health), ' ', stats.health.reason) : null,
        chartBox),
      panel('Doctor', findings))));
  const [events, report] = await Promise.all([
    api.get(`events?plugin=${encodeURIComponent(plugin.id)}&kind=hook&limit=500`).catch(() => ({ events: [] })),
    api.get('doctor').catch(() => null),
  ]);
  if (!still()) return;
  fill(chartBox, callsChart(events.events));
  const mine = report && report.plugins.find((p) => p.id === plugin.id);
  fill(findings, !mine ? h('p', { class: 'muted' }, 'Doctor has nothing on this plugin.')
    : mine.problems.length ? h('ul', { class: 'problems' }, mine.problems.map((p) => h('li', {}, p)))
      : h('p', { class: 'good-text' }, '✓ Nothing needs attention.'),
  mine ? facts([['Artifact', mine.artifact], ['Compatibility', mine.compatibility], ['Isolation', mine.isolation]]) : null);
}

function figure(label, value, tone) {
  return h('div', { class: `figure ${tone || ''}` }, h('span', { class: 'figure-value' }, value), h('span', { class: 'figure-label' }, label));
}

/**
 * A small SVG chart of calls per time slot (errors stacked in red) and
 * the average latency as a line, from the plugin's stored hook receipts.
 */
export function callsChart(events) {
  const hooks = events.filter((e) => e.kind === 'hook');
  if (hooks.length === 0) return h('p', { class: 'muted' }, 'The chart fills in as hooks are called.');
  const times = hooks.map((e) => new Date(e.at).getTime());
  const end = Date.now();
  const start = Math.min(...times, end - 60_000);
  const slots = 24;
  const width = (end - start) / slots || 1;
  const buckets = Array.from({ length: slots }, () => ({ calls: 0, errors: 0, total: 0 }));
  hooks.forEach((e, i) => {
    const slot = Math.min(slots - 1, Math.floor((times[i] - start) / width));
    const b = buckets[slot];
    b.calls += 1;
    if (e.status !== 'ok') b.errors += 1;
    b.total += (e.detail && e.detail.duration_us) || 0;
  });
  const W = 480;
  const H = 120;
  const pad = 4;
  const maxCalls = Math.max(...buckets.map((b) => b.calls), 1);
  const latencies = buckets.map((b) => (b.calls ? b.total / b.calls / 1000 : null));
  const maxLatency = Math.max(...latencies.filter((x) => x !== null), 0.001);
  const bw = (W - pad * 2) / slots;
  const svg = h('svg:svg', { viewBox: `0 0 ${W} ${H + 18}`, class: 'chart', role: 'img', 'aria-label': `Calls over time: ${hooks.length} calls, ${hooks.filter((e) => e.status !== 'ok').length} failed` });
  svg.append(h('svg:line', { x1: pad, x2: W - pad, y1: H, y2: H, class: 'axis' }));
  buckets.forEach((b, i) => {
    if (!b.calls) return;
    const x = pad + i * bw + 1;
    const full = (b.calls / maxCalls) * (H - 10);
    const bad = (b.errors / maxCalls) * (H - 10);
    svg.append(h('svg:rect', { x, y: H - full, width: Math.max(bw - 2, 1), height: full - bad, class: 'bar-ok' },
      h('svg:title', {}, `${b.calls} calls, ${b.errors} failed, ${ms(latencies[i])} average`)));
    if (bad > 0) svg.append(h('svg:rect', { x, y: H - bad, width: Math.max(bw - 2, 1), height: bad, class: 'bar-bad' }));
  });
  const points = latencies.map((l, i) => (l === null ? null : `${pad + i * bw + bw / 2},${H - (l / maxLatency) * (H - 10)}`)).filter(Boolean);
  if (points.length > 1) svg.append(h('svg:polyline', { points: points.join(' '), class: 'latency' }));
  svg.append(h('svg:text', { x: pad, y: H + 14, class: 'tick' }, new Date(start).toLocaleTimeString()));
  svg.append(h('svg:text', { x: W - pad, y: H + 14, class: 'tick', 'text-anchor': 'end' }, 'now'));
  return h('figure', { class: 'chart-figure' }, svg,
    h('figcaption', { class: 'legend' },
      h('span', { class: 'key ok' }), 'calls ',
      h('span', { class: 'key bad' }), 'failed ',
      h('span', { class: 'key line' }), `average latency (peak ${ms(maxLatency)})`));
}

// ------------------------------------------------------------- permissions

/** Permission lines as a list: what each lets the plugin do. */
export function permissionList(lines, { missing = [], onToggle = null, select = null } = {}) {
  if (!lines.length) return h('p', { class: 'muted' }, 'It asks for no permissions: it only sees the data its hooks are given.');
  return h('ul', { class: 'permissions' }, lines.map((line) => {
    const granted = !missing.includes(line);
    const area = permissionArea(line);
    const id = uid('perm');
    return h('li', { class: `permission ${granted ? 'granted' : 'missing'}`, 'data-permission': line },
      select ? h('input', { type: 'checkbox', id, checked: true, 'data-line': line }) : null,
      h('span', { class: `area ${area}` }, areaLabel(area)),
      h(select ? 'label' : 'div', { class: 'perm-text', for: select ? id : null },
        h('span', {}, permissionWords(line)),
        h('span', { class: 'muted mono small' }, line)),
      onToggle ? h('span', { class: `badge ${granted ? 'ok' : 'warn'}` }, granted ? 'Granted' : 'Not granted') : null,
      onToggle ? h('button', {
        type: 'button', class: granted ? 'ghost small' : 'secondary small',
        'aria-label': `${granted ? 'Revoke' : 'Grant'}: ${permissionWords(line)}`,
        onclick: (event) => onToggle(line, granted, event.currentTarget),
      }, granted ? 'Revoke' : 'Grant') : null);
  }));
}

async function permissionsTab(body, plugin, ctx, { path, reload }) {
  const p = plugin.permissions;
  const admin = ctx.can('admin');
  const toggle = async (line, granted, button) => {
    button.disabled = true;
    try {
      await api.post(`${path}/${granted ? 'revoke' : 'grant'}`, { permissions: [line] });
      toast(`${granted ? 'Revoked' : 'Granted'}: ${permissionWords(line)}`);
      await reload();
    } catch (error) {
      toast(describeError(error), 'error');
      button.disabled = false;
    }
  };
  const grantAll = h('button', { type: 'button', class: 'primary', id: 'grant-all' }, 'Grant all');
  grantAll.addEventListener('click', async () => {
    grantAll.disabled = true;
    try {
      await api.post(`${path}/grant`, { all: true });
      toast('Granted every permission it declares');
      await reload();
    } catch (error) {
      toast(describeError(error), 'error');
      grantAll.disabled = false;
    }
  });
  fill(body, panel('What it may do',
    h('p', { class: 'muted' }, p.missing.length
      ? `${p.declared.length - p.missing.length} of ${p.declared.length} granted. A plugin cannot start while a permission it declares is not granted.`
      : 'Everything it declares is granted.'),
    admin && p.missing.length ? h('div', { class: 'actions left' }, grantAll) : null,
    permissionList(p.declared, { missing: p.missing, onToggle: admin ? toggle : null }),
    !admin ? h('p', { class: 'muted small' }, 'Granting and revoking needs the admin role.') : null));
}

// ------------------------------------------------------------------ config

function typeHint(field) {
  const bits = [field.type];
  if (field.minimum !== undefined) bits.push(`≥ ${field.minimum}`);
  if (field.maximum !== undefined) bits.push(`≤ ${field.maximum}`);
  if (field.default !== undefined) bits.push(`default ${JSON.stringify(field.default)}`);
  return bits.join(', ');
}

/**
 * The value typed into a secret's masked input, read by the field's type:
 * `{value}`, or `{error}` for the field's message.
 */
function secretValue(field, text) {
  if (field.type === 'string' || field.type === undefined) {
    if (field.enum && !field.enum.includes(text)) return { error: `One of: ${field.enum.join(', ')}.` };
    return { value: text };
  }
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return { error: `Enter a ${field.type} (as JSON): ${error.message}` };
  }
  const ok = {
    boolean: typeof parsed === 'boolean',
    integer: Number.isInteger(parsed),
    number: typeof parsed === 'number' && Number.isFinite(parsed),
    array: Array.isArray(parsed),
    object: typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed),
  }[field.type];
  if (ok === false) return { error: `Enter a ${field.type}.` };
  if (field.enum && !field.enum.some((option) => JSON.stringify(option) === JSON.stringify(parsed))) {
    return { error: `One of: ${field.enum.map((o) => JSON.stringify(o)).join(', ')}.` };
  }
  return { value: parsed };
}

/**
 * The config form of `config` ({schema, values, missing}); `save(set,
 * unset)` sends a change and answers the API's report or throws its
 * error. Secrets are write-only: their input starts empty, a blank one
 * keeps the stored value.
 */
export function configForm(config, { save, readOnly = false, submitLabel = 'Save' }) {
  const fields = (config.schema && config.schema.fields) || [];
  const values = config.values || {};
  const inputs = new Map();
  const formError = h('div', { class: 'notice bad', role: 'alert', hidden: true });
  const rows = fields.map((field) => {
    const id = `config-${field.key}`;
    const helpId = `${id}-help`;
    const errorId = `${id}-error`;
    const stored = Object.prototype.hasOwnProperty.call(values, field.key);
    const value = values[field.key];
    let input;
    const common = { id, name: field.key, 'aria-describedby': `${helpId} ${errorId}`, disabled: readOnly, required: field.required && !stored };
    if (field.secret) {
      // Whatever its type, a secret is write-only: an empty masked input
      // (never a select or a pre-filled box, which would send the stored
      // value's redaction back or show what is typed), parsed by type on save.
      input = h('input', {
        ...common, type: 'password', autocomplete: 'new-password', spellcheck: 'false',
        placeholder: stored ? 'Stored — type a new value to replace it' : 'Not set',
      });
    } else if (field.enum) {
      input = h('select', common,
        field.required ? null : h('option', { value: '' }, '(default)'),
        field.enum.map((option) => h('option', { value: JSON.stringify(option), selected: stored && JSON.stringify(value) === JSON.stringify(option) }, String(option))));
    } else if (field.type === 'boolean') {
      input = h('input', { ...common, type: 'checkbox', checked: stored ? value === true : field.default === true });
    } else if (field.type === 'integer' || field.type === 'number') {
      input = h('input', {
        ...common, type: 'number', inputmode: 'decimal', step: field.type === 'integer' ? 1 : 'any',
        min: field.minimum, max: field.maximum, placeholder: field.default !== undefined ? String(field.default) : '',
      });
      if (stored) input.value = String(value);
    } else if (field.type === 'array' || field.type === 'object') {
      input = h('textarea', { ...common, rows: 4, spellcheck: 'false', class: 'mono', placeholder: field.default !== undefined ? JSON.stringify(field.default) : '' });
      if (stored) input.value = JSON.stringify(value, null, 2);
    } else {
      input = h('input', {
        ...common, type: 'text', spellcheck: 'false', minlength: field.min_length, maxlength: field.max_length,
        placeholder: field.default !== undefined ? String(field.default) : '',
      });
      if (stored) input.value = String(value);
    }
    inputs.set(field.key, { field, input, stored, error: null });
    const error = h('p', { class: 'field-error', id: errorId });
    inputs.get(field.key).error = error;
    return h('div', { class: 'field', 'data-key': field.key },
      h('label', { for: id },
        field.label || field.key,
        field.required ? h('span', { class: 'required', title: 'required' }, ' *') : null,
        field.secret ? h('span', { class: 'badge muted small-badge' }, stored ? 'secret · set' : 'secret') : null),
      input,
      h('p', { class: 'help', id: helpId },
        field.description ? `${field.description} ` : '',
        h('span', { class: 'muted' }, `(${field.key}: ${typeHint(field)})`)),
      error);
  });
  const submit = h('button', { type: 'submit', class: 'primary', disabled: readOnly }, submitLabel);
  const form = h('form', { class: 'config-form', novalidate: true },
    formError,
    fields.length ? rows : h('p', { class: 'muted' }, 'This plugin has no settings.'),
    fields.length && !readOnly ? h('div', { class: 'actions left' }, submit) : null);
  const showError = (key, message) => {
    const entry = inputs.get(key);
    if (entry) {
      entry.error.textContent = message;
      entry.input.setAttribute('aria-invalid', 'true');
      return true;
    }
    return false;
  };
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    formError.hidden = true;
    const set = {};
    const unset = [];
    let firstBad = null;
    for (const [key, entry] of inputs) {
      const { field, input, stored } = entry;
      entry.error.textContent = '';
      input.removeAttribute('aria-invalid');
      const fail = (message) => {
        showError(key, message);
        firstBad = firstBad || input;
      };
      if (field.type === 'boolean' && !field.enum && !field.secret) {
        const before = stored ? values[key] === true : field.default === true;
        if (input.checked !== before) set[key] = input.checked;
        continue;
      }
      const text = input.value.trim();
      if (field.secret && !text) {
        if (field.required && !stored) fail('Required.');
        continue;
      }
      if (!text) {
        if (field.required && !stored && field.default === undefined) fail('Required.');
        else if (stored && !field.secret) unset.push(key);
        continue;
      }
      if (field.secret) {
        const parsed = secretValue(field, text);
        if (parsed.error) fail(parsed.error);
        else set[key] = parsed.value;
      } else if (field.enum) {
        set[key] = JSON.parse(text);
      } else if (field.type === 'integer' || field.type === 'number') {
        const n = Number(text);
        if (!Number.isFinite(n) || (field.type === 'integer' && !Number.isInteger(n))) fail(`Enter ${field.type === 'integer' ? 'a whole number' : 'a number'}.`);
        else set[key] = n;
      } else if (field.type === 'array' || field.type === 'object') {
        try {
          const parsed = JSON.parse(text);
          if ((field.type === 'array') !== Array.isArray(parsed) || typeof parsed !== 'object' || parsed === null) fail(`Enter a JSON ${field.type}.`);
          else set[key] = parsed;
        } catch (error) {
          fail(`Not JSON: ${error.message}`);
        }
      } else {
        if (!(stored && String(values[key]) === text)) set[key] = text;
      }
    }
    if (firstBad) {
      firstBad.focus();
      return;
    }
    if (!Object.keys(set).length && !unset.length) {
      toast('Nothing changed');
      return;
    }
    submit.disabled = true;
    try {
      await save(set, unset);
    } catch (error) {
      const key = error.message && [...inputs.keys()].find((k) => error.message.includes(`\`${k}\``) || error.message.includes(`"${k}"`) || error.message.includes(`'${k}'`));
      if (!key || !showError(key, error.message)) {
        formError.textContent = describeError(error);
        formError.hidden = false;
      }
      (key ? inputs.get(key).input : formError).focus?.();
    } finally {
      submit.disabled = readOnly;
    }
  });
  return form;
}

async function configTab(body, plugin, ctx, { path, reload }) {
  const form = configForm(plugin.config, {
    readOnly: !ctx.can('operator'),
    save: async (set, unset) => {
      const report = await api.put(`${path}/config`, { set, unset });
      toast(report.missing.length ? `Saved; still missing: ${report.missing.join(', ')}` : 'Settings saved');
      announce('Settings saved');
      await reload();
    },
  });
  fill(body, panel('Settings',
    plugin.config.missing.length ? h('div', { class: 'notice warn' }, 'It cannot start until these are set: ', plugin.config.missing.join(', ')) : null,
    !ctx.can('operator') ? h('p', { class: 'muted small' }, 'Changing settings needs the operator role.') : null,
    form));
}

// ---------------------------------------------------------------- versions

/** A side-by-side table of two versions: version, trust, permissions, config keys. */
export function compare(before, after) {
  const list = (items, other, tone) => (items.length
    ? h('ul', { class: 'plain-list' }, items.map((x) => h('li', { class: other.includes(x) ? '' : tone }, other.includes(x) ? '' : (tone === 'added' ? '+ ' : '− '), x)))
    : h('span', { class: 'muted' }, 'none'));
  const row = (label, a, b) => h('tr', {}, h('th', { scope: 'row' }, label), h('td', {}, a), h('td', {}, b));
  return h('table', { class: 'table compare' },
    h('thead', {}, h('tr', {}, h('th', {}), h('th', { scope: 'col' }, 'Now'), h('th', { scope: 'col' }, 'After'))),
    h('tbody', {},
      row('Version', h('span', { class: 'mono' }, before.version), h('span', { class: 'mono' }, after.version)),
      row('Trust', trustBadge(before.trust), trustBadge(after.trust)),
      row('Permissions', list(before.permissions, after.permissions, 'removed'), list(after.permissions.map(permissionWords), before.permissions.map(permissionWords), 'added')),
      row('Config keys', list(before.config_keys, after.config_keys, 'removed'), list(after.config_keys, before.config_keys, 'added'))));
}

/** Whether version `a` is newer than `b` (semver, pre-releases ignored). */
function newer(a, b) {
  const parts = (v) => v.split(/[-+]/)[0].split('.').map(Number);
  const [x, y] = [parts(a), parts(b)];
  for (let i = 0; i < 3; i += 1) {
    if ((x[i] || 0) !== (y[i] || 0)) return (x[i] || 0) > (y[i] || 0);
  }
  return false;
}

async function versionsTab(body, plugin, ctx, { path, reload }) {
  const admin = ctx.can('admin');
  const current = plugin.versions.find((v) => v.current) || { version: plugin.version, permissions: plugin.permissions.declared, config_keys: [], trust: plugin.trust };
  const rollback = async (target, button) => {
    const verb = newer(target.version, current.version) ? 'Switch to' : 'Roll back to';
    const ok = await confirmDialog({
      title: `${verb} ${target.version}?`,
      body: h('div', { class: 'stack' },
        h('p', {}, `${plugin.name} goes back to ${target.version}; ${current.version} stays installed.`),
        compare({ ...current, permissions: current.permissions.map(permissionWords) }, { ...target, permissions: target.permissions.map(permissionWords) })),
      confirm: `${verb} ${target.version}`,
    });
    if (!ok) return;
    button.disabled = true;
    try {
      const report = await api.post(`${path}/rollback`, { to: target.version });
      toast(`${plugin.name} runs ${report.to} now (was ${report.from})`);
      await reload();
    } catch (error) {
      toast(describeError(error), 'error');
      button.disabled = false;
    }
  };
  const table = h('table', { class: 'table' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Version'), h('th', { scope: 'col' }, 'Installed'), h('th', { scope: 'col' }, 'Trust'), h('th', { scope: 'col' }, 'Permissions'), h('th', { scope: 'col' }, ''))),
    h('tbody', {}, plugin.versions.map((v) => {
      const verb = newer(v.version, current.version) ? 'Switch to' : 'Roll back to';
      const button = admin && !v.current ? h('button', { type: 'button', class: 'secondary small', 'data-rollback': v.version }, `${verb} ${v.version}`) : null;
      if (button) button.addEventListener('click', () => rollback(v, button));
      return h('tr', { 'data-version': v.version },
        h('td', { class: 'mono' }, v.version, v.current ? h('span', { class: 'badge ok small-badge' }, 'current') : null),
        h('td', {}, when(v.installed_at)),
        h('td', {}, trustBadge(v.trust)),
        h('td', {}, String(v.permissions.length)),
        h('td', { class: 'right' }, button));
    })));
  fill(body, h('div', { class: 'stack' },
    panel('Installed versions', h('div', { class: 'flush-table' }, table)),
    admin ? panel('Upgrade', upgradeForm(plugin, current, path, reload)) : h('p', { class: 'muted small' }, 'Upgrading and rolling back need the admin role.')));
}

function upgradeForm(plugin, current, path, reload) {
  const file = h('input', { type: 'file', id: 'upgrade-file', accept: '.tenon,application/octet-stream' });
  const serverPath = h('input', { type: 'text', id: 'upgrade-path', placeholder: '/srv/plugins/echo-0.2.0.tenon', spellcheck: 'false' });
  const status = h('p', { class: 'field-error', role: 'alert' });
  const check = h('button', { type: 'submit', class: 'primary', id: 'upgrade-check' }, 'Review upgrade');
  const form = h('form', { class: 'stack', novalidate: true },
    h('p', { class: 'muted' }, 'Choose a newer package of this plugin. You will see what changes before anything is installed.'),
    h('div', { class: 'grid two tight' },
      h('div', { class: 'control' }, h('label', { for: 'upgrade-file' }, 'Package file (.tenon)'), file),
      h('div', { class: 'control' }, h('label', { for: 'upgrade-path' }, 'or a path on the server'), serverPath)),
    status,
    h('div', {}, check));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    status.textContent = '';
    const chosen = file.files[0];
    const where = serverPath.value.trim();
    if (!chosen && !where) {
      status.textContent = 'Choose a package file or type a path.';
      return;
    }
    check.disabled = true;
    try {
      let source;
      let after;
      if (chosen) {
        const answer = await api.upload(chosen);
        const preview = answer.preview;
        if (preview.id !== plugin.id) throw new Error(`That package is ${preview.id}, not ${plugin.id}.`);
        source = { upload: answer.upload };
        after = {
          version: preview.version, trust: preview.trust, permissions: preview.permissions.map(permissionWords),
          config_keys: ((preview.config && preview.config.fields) || []).map((f) => f.key),
        };
      } else {
        source = { path: where };
      }
      const ok = await confirmDialog({
        title: after ? `Upgrade ${plugin.name} to ${after.version}?` : `Upgrade ${plugin.name}?`,
        body: after
          ? h('div', { class: 'stack' }, compare({ ...current, permissions: current.permissions.map(permissionWords) }, after),
            h('p', { class: 'muted small' }, 'New permissions must be granted before the new version runs.'))
          : h('p', {}, `The package at ${where} is checked and installed as the new current version.`),
        confirm: 'Upgrade',
      });
      if (!ok) return;
      const report = await api.post(`${path}/upgrade`, source);
      toast(`Upgraded from ${report.from} to ${report.to}`);
      announce(`Upgraded to ${report.to}`);
      await reload();
    } catch (error) {
      status.textContent = describeError(error);
    } finally {
      check.disabled = false;
    }
  });
  return form;
}

// ---------------------------------------------------------------- activity

async function activityTab(body, plugin, ctx, { still }) {
  const events = timeline(`Events of ${plugin.name}, newest first`, { showPlugin: false });
  const hooksOnly = h('input', { type: 'checkbox', id: 'only-hooks' });
  fill(body, panel('Events',
    h('div', { class: 'toolbar slim' },
      h('label', { class: 'check-label', for: 'only-hooks' }, hooksOnly, ' Hook receipts only'),
      h('span', { class: 'muted small' }, 'New events appear here as they happen.')),
    events.element));
  const load = async (keepLive = true) => {
    const query = new URLSearchParams({ plugin: plugin.id, limit: '100' });
    if (hooksOnly.checked) query.set('kind', 'hook');
    const page = await api.get(`events?${query}`);
    if (still()) events.set(page.events, { keepLive });
  };
  hooksOnly.addEventListener('change', () => load(false));
  ctx.onEvent((kind, event) => {
    const about = event.plugin === plugin.id || (event.detail && event.detail.plugin === plugin.id);
    if (about && (!hooksOnly.checked || kind === 'hook')) events.prepend(event);
  });
  await load();
}
