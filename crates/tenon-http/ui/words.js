// What the API's words mean to an operator: permissions, states, trust,
// health, event kinds. Pure functions; nothing here talks to the server.

import { h } from './dom.js';

/**
 * What one permission (a line as the API describes it, e.g.
 * "network: outbound *.example.com") lets the plugin do, in plain words.
 */
export function permissionWords(line) {
  const rules = [
    [/^network: outbound (.+)$/, (m) => `Send requests to ${m[1]}`],
    [/^network: method (.+)$/, (m) => `Use the HTTP ${m[1]} method`],
    [/^network: any method$/, () => 'Use any HTTP method'],
    [/^network: private addresses$/, () => 'Reach private and loopback addresses (your internal network, this machine)'],
    [/^network: responses up to (.+)$/, (m) => `Read responses of up to ${m[1]}`],
    [/^filesystem: (.+) \((read|write|read_write|readwrite|rw|ro)\)$/, (m) => `${/write|rw/.test(m[2]) ? 'Read and write' : 'Read'} files under ${m[1]}`],
    [/^filesystem: (.+)$/, (m) => `Use files at ${m[1]}`],
    [/^kv \(quota (.+)\)$/, (m) => `Keep its own data in the key-value store (up to ${m[1]})`],
    [/^kv: quota (.+) \(granted (.+)\)$/, (m) => `Keep up to ${m[1]} in the key-value store (${m[2]} granted now)`],
    [/^kv$/, () => 'Keep its own data in the key-value store'],
    [/^secrets: (.+)$/, (m) => `Read the secret setting “${m[1]}”`],
    [/^events: publish (.+)$/, (m) => `Publish events on ${m[1]}`],
    [/^events: subscribe (.+)$/, (m) => `Receive events on ${m[1]}`],
  ];
  for (const [pattern, say] of rules) {
    const match = line.match(pattern);
    if (match) return say(match);
  }
  return line;
}

/** The broad area of a permission line, for its icon and grouping. */
export function permissionArea(line) {
  const area = line.split(/[:( ]/)[0];
  return ['network', 'filesystem', 'kv', 'secrets', 'events'].includes(area) ? area : 'other';
}

const AREA_LABELS = {
  network: 'Network', filesystem: 'Files', kv: 'Storage', secrets: 'Secrets', events: 'Events', other: 'Host',
};
export const areaLabel = (area) => AREA_LABELS[area] || area;

const STATES = {
  installed: ['Installed', 'neutral'],
  pending_config: ['Needs config', 'warn'],
  resolved: ['Ready', 'neutral'],
  loading: ['Loading', 'info'],
  loaded: ['Loaded', 'info'],
  activating: ['Starting', 'info'],
  active: ['Active', 'ok'],
  deactivating: ['Stopping', 'info'],
  disabled: ['Disabled', 'muted'],
  uninstalling: ['Uninstalling', 'info'],
  removed: ['Removed', 'muted'],
  error: ['Error', 'bad'],
};
export const STATE_NAMES = Object.keys(STATES);

export function stateBadge(state) {
  const [label, tone] = STATES[state] || [state, 'neutral'];
  return h('span', { class: `badge ${tone}`, 'data-state': state }, label);
}
export const stateLabel = (state) => (STATES[state] || [state])[0];

const LEVELS = {
  internal: ['Internal', 'ok', 'Trusted as the host’s own code'],
  partner: ['Partner', 'info', 'Signed by a partner the trust policy names'],
  untrusted: ['Untrusted', 'warn', 'Not vouched for: runs sandboxed with limits'],
};

/** The trust posture badge: level · how it runs. */
export function trustBadge(trust) {
  if (!trust) return h('span', { class: 'badge muted', title: 'No trust record kept for this version' }, 'Unrecorded');
  const level = trust.level || (trust.posture && trust.posture.level);
  const [label, tone, why] = LEVELS[level] || [level, 'neutral', ''];
  const posture = trust.posture ? trust.posture.badge : label;
  const signed = trust.checked === 'trusted' ? 'signed and verified' : trust.checked;
  return h('span', { class: `badge ${tone} trust`, title: `${why}; ${signed}` }, posture || label);
}

export function checkedWords(checked) {
  return {
    host: 'the host’s own plugin',
    directory: 'a directory on the server (unsigned)',
    unsigned: 'an unsigned package',
    untrusted: 'signed by a key the policy does not trust',
    trusted: 'signed by a trusted key',
  }[checked] || checked;
}

const HEALTH = {
  healthy: ['Healthy', 'ok'],
  warning: ['Warning', 'warn'],
  critical: ['Critical', 'bad'],
  unknown: ['Too few calls', 'muted'],
};
export function healthBadge(health, prefix = '') {
  const status = health ? health.status : 'unknown';
  const [label, tone] = HEALTH[status] || [status, 'neutral'];
  return h('span', { class: `badge ${tone}`, title: health && health.reason ? health.reason : 'Too few calls to judge' }, prefix + (prefix ? label.toLowerCase() : label));
}

const KINDS = {
  installed: 'Installed',
  state_changed: 'State changed',
  enabled_changed: 'Enabled changed',
  version_added: 'Version added',
  version_changed: 'Version changed',
  version_removed: 'Version removed',
  config_changed: 'Config changed',
  granted: 'Permissions granted',
  grant_revoked: 'Permissions revoked',
  removed: 'Removed',
  hook: 'Hook call',
  permission_denied: 'Permission denied',
  auto_disable: 'Disabled automatically',
  error: 'Error',
  'api.request': 'Admin request',
};
export const kindLabel = (kind) => KINDS[kind] || kind.replace(/[._]/g, ' ');

/** One line saying what an event's detail holds. */
export function eventSummary(event) {
  const d = event.detail || {};
  switch (event.kind) {
    case 'hook': {
      const parts = [d.hook || ''];
      if (d.status) parts.push(d.status);
      if (typeof d.duration_us === 'number') parts.push(`${(d.duration_us / 1000).toFixed(2)} ms`);
      if (d.error) parts.push(d.error);
      return parts.filter(Boolean).join(' · ');
    }
    case 'state_changed':
      return [d.from && d.to ? `${stateLabel(d.from)} → ${stateLabel(d.to)}` : '', d.reason].filter(Boolean).join(' · ');
    case 'enabled_changed':
      return [d.enabled ? 'enabled' : 'disabled', d.reason].filter(Boolean).join(' · ');
    case 'api.request':
      return [d.action, d.actor ? `by ${d.actor}` : '', d.plugin, d.error].filter(Boolean).join(' · ');
    case 'config_changed': {
      const keys = [...(d.set || []), ...(d.unset || [])];
      return keys.length ? `keys: ${keys.join(', ')}` : '';
    }
    default: {
      const bits = [];
      for (const [key, value] of Object.entries(d)) {
        if (bits.length >= 3) break;
        if (value === null || typeof value === 'object') continue;
        bits.push(`${key}: ${value}`);
      }
      return bits.join(' · ');
    }
  }
}

const ROLES = { viewer: 0, operator: 1, admin: 2 };
/** Whether `role` may do what `needed` may. */
export const allows = (role, needed) => (ROLES[role] ?? -1) >= ROLES[needed];
