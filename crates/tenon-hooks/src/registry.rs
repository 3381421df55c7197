//! [`HookRegistry`]: declared hook specs and the handlers registered for them.
//!
//! Reads never lock: each hook's handler list is an immutable, already sorted
//! snapshot behind an atomic pointer ([`arc_swap::ArcSwap`]). Writers
//! (declare, register, unregister) serialize on a mutex, build a new list and
//! swap it in, so a dispatch that already loaded the old list keeps it to the
//! end and the next dispatch sees the new one.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

use crate::patch::MutablePaths;
use crate::policy::{Backoff, FailPolicy, HandlerOptions, Priority};
use crate::spec::duration_ms;
use crate::{HookError, HookHandler, HookSpec};
use tenon_types::similar;

/// Identifies one handler registration (unique within a registry, increasing
/// in registration order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HandlerId(pub(crate) u64);

impl HandlerId {
    /// An id from its number, for receipts read back from storage and for
    /// tests. Ids mean something only to the registry that issued them.
    pub const fn from_raw(raw: u64) -> Self {
        Self(raw)
    }

    /// The number behind the id.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for HandlerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A registration as a listing shows it (`tenon hooks list`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandlerInfo {
    /// The registration.
    pub id: HandlerId,
    /// The hook.
    pub hook: String,
    /// The plugin.
    pub plugin: String,
    /// Higher runs first.
    pub priority: Priority,
    /// What a failure does to the chain.
    pub fail_policy: FailPolicy,
    /// The effective per-attempt timeout (the spec's default if the
    /// registration gave none), as `timeout_ms`.
    #[serde(rename = "timeout_ms", with = "duration_ms")]
    pub timeout: Duration,
    /// Extra attempts after an error or timeout.
    pub retries: u32,
    /// Delay between attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Backoff>,
}

/// One registration, as dispatch sees it.
#[derive(Clone)]
pub(crate) struct HandlerEntry {
    pub(crate) id: HandlerId,
    pub(crate) plugin: Arc<str>,
    pub(crate) handler: Arc<dyn HookHandler>,
    pub(crate) priority: Priority,
    pub(crate) fail_policy: FailPolicy,
    pub(crate) timeout: Duration,
    pub(crate) retries: u32,
    pub(crate) backoff: Option<Backoff>,
}

impl HandlerEntry {
    fn info(&self, hook: &str) -> HandlerInfo {
        HandlerInfo {
            id: self.id,
            hook: hook.to_owned(),
            plugin: self.plugin.to_string(),
            priority: self.priority,
            fail_policy: self.fail_policy,
            timeout: self.timeout,
            retries: self.retries,
            backoff: self.backoff,
        }
    }

    /// Dispatch order: priority descending, then plugin id, then registration.
    fn dispatch_order(a: &Self, b: &Self) -> std::cmp::Ordering {
        b.priority
            .cmp(&a.priority)
            .then_with(|| a.plugin.cmp(&b.plugin))
            .then_with(|| a.id.cmp(&b.id))
    }
}

/// A declared hook and its current handler snapshot.
pub(crate) struct HookSlot {
    pub(crate) name: Arc<str>,
    pub(crate) spec: HookSpec,
    pub(crate) mutable: MutablePaths,
    /// Sorted in dispatch order; replaced, never mutated.
    pub(crate) handlers: ArcSwap<Vec<HandlerEntry>>,
}

type HookMap = HashMap<Arc<str>, Arc<HookSlot>, BuildHasherDefault<NameHasher>>;

/// FxHash (rustc's hasher) for hook names: every dispatch by name hashes one,
/// and names are declared by the host, not chosen by an attacker, so a fast
/// unkeyed hash is safe here.
#[derive(Default, Clone, Copy)]
struct NameHasher(u64);

impl NameHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let mut tail = [0; 8];
        let rest = chunks.remainder();
        tail[..rest.len()].copy_from_slice(rest);
        self.add(u64::from_le_bytes(tail));
    }

    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

struct Inner {
    hooks: ArcSwap<HookMap>,
    writer: Mutex<Writer>,
}

#[derive(Default)]
struct Writer {
    next_id: u64,
    /// The hook of every live registration.
    owners: HashMap<HandlerId, Arc<HookSlot>>,
}

/// The declared hooks and their handlers. Cheap to clone (clones share it);
/// safe to change while dispatches run.
///
/// ```
/// use tenon_hooks::{handler_fn, HandlerOptions, HookAction, HookRegistry, HookSpec, Priority};
///
/// let registry = HookRegistry::new();
/// registry.declare(HookSpec::new("model.pre_call").with_mutable(["/temperature"]).with_blocking(true))?;
/// let id = registry.register(
///     "acme.cost-guard",
///     "model.pre_call",
///     handler_fn(|_| Ok(HookAction::CONTINUE)),
///     HandlerOptions::new().with_priority(Priority::HIGH),
/// )?;
/// assert_eq!(registry.handlers("model.pre_call")?.len(), 1);
/// assert!(registry.unregister(id).is_some());
/// # Ok::<(), tenon_hooks::HookError>(())
/// ```
#[derive(Clone)]
pub struct HookRegistry {
    inner: Arc<Inner>,
}

impl Default for HookRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for HookRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hooks = self.inner.hooks.load();
        let mut names: Vec<_> = hooks.keys().map(|k| &**k).collect();
        names.sort_unstable();
        f.debug_struct("HookRegistry")
            .field("hooks", &names)
            .finish_non_exhaustive()
    }
}

impl HookRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                hooks: ArcSwap::from_pointee(HookMap::default()),
                writer: Mutex::new(Writer::default()),
            }),
        }
    }

    fn writer(&self) -> MutexGuard<'_, Writer> {
        // Writers only replace whole snapshots, so a panic cannot leave a
        // half-made one behind.
        self.inner
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Declares a hook. Each name is declared once.
    pub fn declare(&self, spec: HookSpec) -> Result<(), HookError> {
        self.declare_all([spec])
    }

    /// Declares several hooks at once: either all of them or, on the first
    /// invalid or duplicate spec, none.
    pub fn declare_all(&self, specs: impl IntoIterator<Item = HookSpec>) -> Result<(), HookError> {
        let _writer = self.writer();
        let mut hooks = HookMap::clone(&self.inner.hooks.load());
        for spec in specs {
            let mutable = spec.compile()?;
            if hooks.contains_key(spec.name.as_str()) {
                return Err(HookError::DuplicateHook { hook: spec.name });
            }
            let name: Arc<str> = Arc::from(spec.name.as_str());
            let slot = HookSlot {
                name: Arc::clone(&name),
                spec,
                mutable,
                handlers: ArcSwap::from_pointee(Vec::new()),
            };
            hooks.insert(name, Arc::new(slot));
        }
        self.inner.hooks.store(Arc::new(hooks));
        Ok(())
    }

    /// Whether `hook` is declared.
    pub fn is_declared(&self, hook: &str) -> bool {
        self.inner.hooks.load().contains_key(hook)
    }

    /// The spec of `hook`.
    pub fn spec(&self, hook: &str) -> Result<HookSpec, HookError> {
        self.slot(hook).map(|slot| slot.spec.clone())
    }

    /// Every declared spec, sorted by name.
    pub fn specs(&self) -> Vec<HookSpec> {
        let mut specs: Vec<_> = self
            .inner
            .hooks
            .load()
            .values()
            .map(|s| s.spec.clone())
            .collect();
        specs.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        specs
    }

    pub(crate) fn slot(&self, hook: &str) -> Result<Arc<HookSlot>, HookError> {
        let hooks = self.inner.hooks.load();
        match hooks.get(hook) {
            Some(slot) => Ok(Arc::clone(slot)),
            None => Err(undeclared(hook, &hooks)),
        }
    }

    /// Registers `handler` of `plugin` for `hook`.
    ///
    /// Fails if the hook is not declared, the plugin id is empty or contains
    /// whitespace, or the timeout is zero.
    pub fn register(
        &self,
        plugin: &str,
        hook: &str,
        handler: Arc<dyn HookHandler>,
        options: HandlerOptions,
    ) -> Result<HandlerId, HookError> {
        let invalid = |reason: String| HookError::InvalidRegistration {
            plugin: plugin.to_owned(),
            hook: hook.to_owned(),
            reason,
        };
        if plugin.is_empty() || plugin.chars().any(char::is_whitespace) {
            return Err(invalid(
                "the plugin id is empty or contains whitespace".to_owned(),
            ));
        }
        if options.timeout.is_some_and(|t| t.is_zero()) {
            return Err(invalid(
                "the timeout is 0: give the handler at least 1 ms".to_owned(),
            ));
        }
        let mut writer = self.writer();
        let slot = self.slot(hook)?;
        writer.next_id += 1;
        let id = HandlerId(writer.next_id);
        let entry = HandlerEntry {
            id,
            plugin: Arc::from(plugin),
            handler,
            priority: options.priority,
            fail_policy: options.fail_policy,
            timeout: options.timeout.unwrap_or(slot.spec.default_timeout),
            retries: options.retries,
            backoff: options.backoff,
        };
        let mut handlers = Vec::clone(&slot.handlers.load());
        handlers.push(entry);
        handlers.sort_by(HandlerEntry::dispatch_order);
        slot.handlers.store(Arc::new(handlers));
        writer.owners.insert(id, slot);
        Ok(id)
    }

    /// Removes one registration; returns it, or `None` if it was not registered.
    pub fn unregister(&self, id: HandlerId) -> Option<HandlerInfo> {
        let mut writer = self.writer();
        let slot = writer.owners.remove(&id)?;
        let mut handlers = Vec::clone(&slot.handlers.load());
        let index = handlers.iter().position(|e| e.id == id)?;
        let removed = handlers.remove(index);
        slot.handlers.store(Arc::new(handlers));
        Some(removed.info(&slot.name))
    }

    /// Removes every registration of `plugin` (when it deactivates); returns
    /// how many there were.
    pub fn unregister_plugin(&self, plugin: &str) -> usize {
        let mut writer = self.writer();
        let mut removed = 0;
        for slot in self.inner.hooks.load().values() {
            let current = slot.handlers.load();
            if !current.iter().any(|e| &*e.plugin == plugin) {
                continue;
            }
            let kept: Vec<_> = current
                .iter()
                .filter(|e| &*e.plugin != plugin)
                .cloned()
                .collect();
            for gone in current.iter().filter(|e| &*e.plugin == plugin) {
                writer.owners.remove(&gone.id);
                removed += 1;
            }
            slot.handlers.store(Arc::new(kept));
        }
        removed
    }

    /// The handlers of `hook`, in dispatch order.
    pub fn handlers(&self, hook: &str) -> Result<Vec<HandlerInfo>, HookError> {
        let slot = self.slot(hook)?;
        Ok(slot
            .handlers
            .load()
            .iter()
            .map(|e| e.info(&slot.name))
            .collect())
    }

    /// Every registration, by hook name and then in dispatch order.
    pub fn list(&self) -> Vec<HandlerInfo> {
        let hooks = self.inner.hooks.load();
        let mut slots: Vec<_> = hooks.values().collect();
        slots.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        slots
            .into_iter()
            .flat_map(|slot| {
                slot.handlers
                    .load()
                    .iter()
                    .map(|e| e.info(&slot.name))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

fn undeclared(hook: &str, hooks: &HookMap) -> HookError {
    let mut declared: Vec<String> = hooks.keys().map(|k| k.to_string()).collect();
    declared.sort_unstable();
    HookError::UndeclaredHook {
        hook: hook.to_owned(),
        suggestions: similar(hook, declared.iter().map(String::as_str)),
        declared,
    }
}
