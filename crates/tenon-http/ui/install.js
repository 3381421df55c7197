// The install wizard: a package (dropped, picked, or a path on the
// server) → a preview of what it is and asks for, before anything is
// stored → install → configure → grant → enable.

import * as api from './api.js';
import { h, fill, announce, toast, facts, panel, describeError } from './dom.js';
import { trustBadge, stateBadge, checkedWords } from './words.js';
import { configForm, permissionList } from './detail.js';
import { pageHead } from './plugins.js';

const STEPS = ['Package', 'Review', 'Configure', 'Grant', 'Enable'];

export async function installView(view, ctx) {
  if (!ctx.can('admin')) {
    fill(view, pageHead('Install a plugin'), h('div', { class: 'notice warn' }, `Installing needs the admin role; this token has the ${ctx.session.role} role.`));
    return;
  }
  const stepper = h('ol', { class: 'stepper', 'aria-label': 'Install steps' });
  const stage = h('div', { class: 'card wizard' });
  fill(view, pageHead('Install a plugin', 'From a .tenon package or a plugin on the server. You see what it asks for before anything is stored.'), stepper, stage);
  const state = { step: 0, upload: null, preview: null, path: null, plugin: null };

  const show = (step, content) => {
    state.step = step;
    fill(stepper, STEPS.map((name, i) => h('li', {
      class: i < step ? 'done' : i === step ? 'current' : '',
      'aria-current': i === step ? 'step' : false,
    }, h('span', { class: 'step-num', 'aria-hidden': 'true' }, i < step ? '✓' : String(i + 1)), h('span', {}, name))));
    fill(stage, content);
    const heading = stage.querySelector('h2');
    if (heading) {
      heading.tabIndex = -1;
      heading.focus();
    }
    announce(`Step ${step + 1} of ${STEPS.length}: ${STEPS[step]}`);
  };

  // ------------------------------------------------------------ 1. package
  const packageStep = () => {
    const error = h('p', { class: 'field-error', role: 'alert', id: 'package-error' });
    const file = h('input', { type: 'file', id: 'package-file', accept: '.tenon,application/octet-stream', class: 'sr-only' });
    const sig = h('input', { type: 'file', id: 'package-sig', accept: '.sig' });
    const drop = h('div', { class: 'dropzone', id: 'dropzone' },
      h('p', { class: 'drop-title' }, 'Drop a .tenon package here'),
      h('p', { class: 'muted' }, 'or'),
      h('label', { for: 'package-file', class: 'button secondary' }, 'Choose a file…'),
      file);
    const path = h('input', { type: 'text', id: 'package-path', placeholder: '/srv/plugins/notifier or /srv/plugins/notifier.tenon', spellcheck: 'false' });
    const pathButton = h('button', { type: 'submit', class: 'secondary' }, 'Use this path');
    const pathForm = h('form', { class: 'inline-form', novalidate: true },
      h('div', { class: 'control grow' }, h('label', { for: 'package-path' }, 'A plugin directory or package on the server'), path), pathButton);
    const uploadFile = async (chosen) => {
      error.textContent = '';
      if (!chosen) return;
      if (!/\.tenon$/i.test(chosen.name)) {
        error.textContent = `${chosen.name} is not a .tenon package.`;
        return;
      }
      drop.classList.add('busy');
      fill(drop.querySelector('.drop-title'), `Checking ${chosen.name}…`);
      try {
        let signatures = null;
        if (sig.files[0]) {
          const raw = new Uint8Array(await sig.files[0].arrayBuffer());
          signatures = btoa(String.fromCharCode(...raw));
        }
        const answer = await api.upload(chosen, signatures);
        state.upload = answer.upload;
        state.preview = answer.preview;
        state.path = null;
        reviewStep();
      } catch (failure) {
        error.textContent = describeError(failure);
        drop.classList.remove('busy');
        fill(drop.querySelector('.drop-title'), 'Drop a .tenon package here');
      }
    };
    file.addEventListener('change', () => uploadFile(file.files[0]));
    drop.addEventListener('dragover', (event) => {
      event.preventDefault();
      drop.classList.add('over');
    });
    drop.addEventListener('dragleave', () => drop.classList.remove('over'));
    drop.addEventListener('drop', (event) => {
      event.preventDefault();
      drop.classList.remove('over');
      uploadFile(event.dataTransfer.files[0]);
    });
    pathForm.addEventListener('submit', (event) => {
      event.preventDefault();
      const where = path.value.trim();
      if (!where) {
        error.textContent = 'Type a path on the server.';
        path.focus();
        return;
      }
      state.path = where;
      state.upload = null;
      state.preview = null;
      reviewStep();
    });
    show(0, h('div', { class: 'stack' },
      h('h2', {}, 'Choose a package'),
      drop,
      h('details', {}, h('summary', {}, 'Signed package? Add its signature file'),
        h('div', { class: 'control' }, h('label', { for: 'package-sig' }, 'Signature file (.tenon.sig)'), sig)),
      h('div', { class: 'divider' }, h('span', {}, 'or')),
      pathForm,
      error));
  };

  // ------------------------------------------------------------- 2. review
  const reviewStep = () => {
    const p = state.preview;
    const error = h('p', { class: 'field-error', role: 'alert' });
    const install = h('button', { type: 'button', class: 'primary', id: 'install' }, p && p.installed ? `Upgrade to ${p.version}` : 'Install');
    const back = h('button', { type: 'button', class: 'secondary', onclick: packageStep }, 'Back');
    install.addEventListener('click', async () => {
      install.disabled = true;
      error.textContent = '';
      const source = state.upload ? { upload: state.upload } : { path: state.path };
      try {
        if (p && p.installed) {
          const report = await api.post(`${api.pluginPath(p.id)}/upgrade`, source);
          toast(`Upgraded ${report.id} to ${report.to}`);
          state.id = report.id;
        } else {
          const report = await api.post('plugins', source);
          toast(`Installed ${report.id} ${report.version}`);
          state.id = report.id;
        }
        await configureStep();
      } catch (failure) {
        error.textContent = describeError(failure);
        install.disabled = false;
      }
    });
    if (!p) {
      show(1, h('div', { class: 'stack' },
        h('h2', {}, 'Install from the server'),
        h('p', {}, 'The plugin at ', h('code', {}, state.path), ' is checked against the trust policy when it is installed; its permissions and settings are shown next.'),
        error, h('div', { class: 'actions left' }, back, install)));
      return;
    }
    const meta = p.manifest.plugin;
    const fields = (p.config && p.config.fields) || [];
    show(1, h('div', { class: 'stack' },
      h('div', {}, h('h2', { class: 'tight' }, `${meta.name} `, h('span', { class: 'version mono' }, p.version)),
        h('p', { class: 'subtitle mono' }, p.id)),
      meta.description ? h('p', {}, meta.description) : null,
      p.installed ? h('div', { class: 'notice info' }, `Version ${p.installed} is installed: this would upgrade it.`) : null,
      h('p', { class: 'muted' }, 'Nothing is stored until you install it.'),
      h('div', { class: 'grid two' },
        panel('What it asks for', permissionList(p.permissions),
          p.granted_by_policy ? h('p', { class: 'muted small' }, 'The grant policy grants these without you.') : null),
        h('div', { class: 'stack' },
          panel('Trust', facts([
            ['Posture', trustBadge(p.trust)],
            ['Origin', checkedWords(p.trust.checked)],
            ['Runs as', p.trust.posture.execution],
            ['Isolation', p.trust.posture.isolation],
          ])),
          panel('Settings', fields.length
            ? h('ul', { class: 'plain-list' }, fields.map((f) => h('li', {}, h('strong', {}, f.label || f.key), ` (${f.type}${f.required ? ', required' : ''}${f.secret ? ', secret' : ''})`)))
            : h('p', { class: 'muted' }, 'None.')),
          panel('Hooks', p.hooks.length ? h('p', { class: 'mono small' }, p.hooks.join(', ')) : h('p', { class: 'muted' }, 'None.')))),
      p.warnings.length || p.notes.length ? h('div', { class: 'notice warn' }, h('ul', { class: 'plain-list' }, [...p.warnings.map((w) => w.message || JSON.stringify(w)), ...p.notes].map((x) => h('li', {}, x)))) : null,
      error,
      h('div', { class: 'actions left' }, back, install)));
  };

  // ---------------------------------------------------------- 3. configure
  const configureStep = async () => {
    state.plugin = await api.get(api.pluginPath(state.id));
    const plugin = state.plugin;
    const next = h('button', { type: 'button', class: plugin.config.missing.length ? 'ghost' : 'primary', id: 'to-grant', onclick: grantStep }, plugin.config.missing.length ? 'Skip for now' : 'Continue');
    const form = configForm(plugin.config, {
      submitLabel: 'Save and continue',
      save: async (set, unset) => {
        const report = await api.put(`${api.pluginPath(plugin.id)}/config`, { set, unset });
        toast('Settings saved');
        if (report.missing.length) throw new Error(`Still missing: ${report.missing.join(', ')}`);
        await grantStep();
      },
    });
    show(2, h('div', { class: 'stack' },
      h('h2', {}, `Configure ${plugin.name}`),
      plugin.config.schema.fields && plugin.config.schema.fields.length
        ? h('p', { class: 'muted' }, 'Secret values are stored encrypted and never shown again.')
        : null,
      form,
      h('div', { class: 'actions left' }, next)));
  };

  // -------------------------------------------------------------- 4. grant
  const grantStep = async () => {
    const plugin = await api.get(api.pluginPath(state.id));
    state.plugin = plugin;
    const missing = plugin.permissions.missing;
    if (!missing.length) {
      enableStep('Everything it declares is granted already.');
      return;
    }
    const error = h('p', { class: 'field-error', role: 'alert' });
    const list = permissionList(missing, { select: true });
    const grant = h('button', { type: 'button', class: 'primary', id: 'grant' }, 'Grant selected');
    const skip = h('button', { type: 'button', class: 'ghost', onclick: () => enableStep('Nothing granted: it cannot start until its permissions are.') }, 'Skip');
    grant.addEventListener('click', async () => {
      const lines = [...list.querySelectorAll('input[type=checkbox]:checked')].map((box) => box.dataset.line);
      if (!lines.length) {
        error.textContent = 'Select at least one, or skip.';
        return;
      }
      grant.disabled = true;
      try {
        await api.post(`${api.pluginPath(plugin.id)}/grant`, lines.length === missing.length ? { all: true } : { permissions: lines });
        toast(`Granted ${lines.length} ${lines.length === 1 ? 'permission' : 'permissions'}`);
        enableStep();
      } catch (failure) {
        error.textContent = describeError(failure);
        grant.disabled = false;
      }
    });
    show(3, h('div', { class: 'stack' },
      h('h2', {}, 'Grant permissions'),
      h('p', { class: 'muted' }, `${plugin.name} may do these only once you grant them. Untick what you do not want to allow.`),
      list, error,
      h('div', { class: 'actions left' }, skip, grant)));
  };

  // ------------------------------------------------------------- 5. enable
  const enableStep = async (note) => {
    const plugin = await api.get(api.pluginPath(state.id));
    const error = h('p', { class: 'field-error', role: 'alert' });
    const enable = h('button', { type: 'button', class: 'primary', id: 'enable-now' }, 'Enable now');
    const open = h('a', { class: 'button secondary', href: `#/plugins/${plugin.id}` }, 'Open plugin page');
    const status = h('span', {}, stateBadge(plugin.state));
    enable.addEventListener('click', async () => {
      enable.disabled = true;
      error.textContent = '';
      try {
        const record = await api.post(`${api.pluginPath(plugin.id)}/enable`);
        fill(status, stateBadge(record.state));
        toast(`Enabled ${plugin.name}`);
        announce(`${plugin.name} is ${record.state}`);
        enable.hidden = true;
      } catch (failure) {
        error.textContent = describeError(failure);
        enable.disabled = false;
      }
    });
    show(4, h('div', { class: 'stack' },
      h('h2', {}, `${plugin.name} is installed`),
      note ? h('p', { class: 'muted' }, note) : null,
      facts([['Plugin', plugin.id], ['Version', plugin.version], ['State', status],
        ['Missing settings', plugin.config.missing.join(', ') || 'none'],
        ['Not granted', String(plugin.permissions.missing.length)]]),
      error,
      h('div', { class: 'actions left' }, plugin.enabled ? null : enable, open)));
  };

  packageStep();
}
