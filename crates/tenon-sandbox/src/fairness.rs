//! Fairness between tenants and plugins sharing one runtime: caps on live
//! instances and on the memory they may reserve, per plugin, per tenant and
//! for the whole runtime, with idle instances reclaimed under pressure.
//!
//! Every live instance of a WebAssembly plugin (idle in a pool or running a
//! call) holds a [`Lease`] from its runtime's [`Fairness`] ledger, which
//! counts it against its plugin, its tenant and the runtime, with the memory
//! its manifest's `limits.memory` lets it reach. An instance that would go
//! over a cap is not made: first an idle instance of another plugin (of the
//! same tenant when the tenant's cap is the one reached, of any tenant when
//! the runtime's is, the tenant using most first) is dropped to make room;
//! when none can be, the call fails with [`SandboxError::InstanceCap`],
//! naming the cap. A call is refused at once rather than queued: a tenant
//! at its cap is told so, and does not hold anyone else's turn.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use tenon_manifest::{ByteSize, LimitMaxima, Limits};

use crate::error::SandboxError;

/// The caps of one runtime (see the [module documentation](self)).
///
/// [`FairnessLimits::for_pool`] derives every cap from the number of
/// instances the runtime holds and the default `[limits].memory` (64 MiB):
/// the runtime's memory cap is that many default instances, each tenant may
/// use a quarter of the instances and of the memory, each plugin an eighth
/// of the memory; no memory cap is below the largest `limits.memory` a
/// manifest may ask for by default (`LimitMaxima::memory`, 4 GiB), so that
/// every plugin a host accepts can keep at least one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FairnessLimits {
    /// Live instances across every tenant and plugin of the runtime.
    pub pool_instances: u32,
    /// Memory the runtime's live instances may reserve together, in bytes
    /// (each counts its `limits.memory`).
    pub pool_memory: u64,
    /// Live instances of one tenant.
    pub tenant_instances: u32,
    /// Memory one tenant's live instances may reserve, in bytes.
    pub tenant_memory: u64,
    /// Memory one plugin's live instances may reserve, in bytes (its live
    /// instances are capped by its own `limits.max_instances`).
    pub plugin_memory: u64,
}

/// The instances [`FairnessLimits::default`] is derived from (the
/// component runtime's default pool).
pub const DEFAULT_POOL_INSTANCES: u32 = 1000;

impl Default for FairnessLimits {
    fn default() -> Self {
        Self::for_pool(DEFAULT_POOL_INSTANCES)
    }
}

impl FairnessLimits {
    /// The caps for a runtime of `instances` live instances at most (see
    /// the type's documentation): with the default 1000, 62.5 GiB for the
    /// runtime, 250 instances and 15.6 GiB per tenant, 7.8 GiB per plugin.
    pub fn for_pool(instances: u32) -> Self {
        let instances = instances.max(1);
        let pool_memory = u64::from(instances) * Limits::default().memory.bytes();
        // Whatever the pool, a plugin may keep one instance of the largest
        // memory a manifest may ask for by default.
        let floor = LimitMaxima::default().memory.bytes();
        Self {
            pool_instances: instances,
            pool_memory: pool_memory.max(floor),
            tenant_instances: (instances / 4).max(1),
            tenant_memory: (pool_memory / 4).max(floor),
            plugin_memory: (pool_memory / 8).max(floor),
        }
    }

    /// Caps the runtime's live instances at `instances`.
    pub fn with_pool_instances(mut self, instances: u32) -> Self {
        self.pool_instances = instances;
        self
    }

    /// Caps the memory the runtime's live instances reserve at `bytes`.
    pub fn with_pool_memory(mut self, bytes: u64) -> Self {
        self.pool_memory = bytes;
        self
    }

    /// Caps each tenant's live instances at `instances`.
    pub fn with_tenant_instances(mut self, instances: u32) -> Self {
        self.tenant_instances = instances;
        self
    }

    /// Caps the memory each tenant's live instances reserve at `bytes`.
    pub fn with_tenant_memory(mut self, bytes: u64) -> Self {
        self.tenant_memory = bytes;
        self
    }

    /// Caps the memory each plugin's live instances reserve at `bytes`.
    pub fn with_plugin_memory(mut self, bytes: u64) -> Self {
        self.plugin_memory = bytes;
        self
    }

    /// Refuses, at load, a plugin whose one instance could never fit.
    pub(crate) fn check_instance(&self, plugin: &str, memory: u64) -> Result<(), SandboxError> {
        let smallest = [
            (self.plugin_memory, "plugin_memory", "each plugin"),
            (self.tenant_memory, "tenant_memory", "each tenant"),
            (self.pool_memory, "pool_memory", "the runtime"),
        ]
        .into_iter()
        .min_by_key(|(cap, ..)| *cap)
        .unwrap_or((u64::MAX, "", ""));
        if memory > smallest.0 {
            return Err(SandboxError::Unsupported {
                plugin: plugin.to_owned(),
                message: format!(
                    "limits.memory is {}; this host lets {} reserve at most {} \
                     (FairnessLimits::{})",
                    ByteSize(memory),
                    smallest.2,
                    ByteSize(smallest.0),
                    smallest.1
                ),
            });
        }
        Ok(())
    }
}

/// Live instances and the memory they reserve.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InstanceUsage {
    /// Live instances (idle or running).
    pub instances: u64,
    /// The memory they may reach together, in bytes.
    pub memory: u64,
}

impl InstanceUsage {
    fn add(&mut self, memory: u64) {
        self.instances += 1;
        self.memory += memory;
    }

    fn remove(&mut self, memory: u64) {
        self.instances = self.instances.saturating_sub(1);
        self.memory = self.memory.saturating_sub(memory);
    }
}

/// What a [`Fairness`] ledger saw: usage now, per tenant and in all, and
/// what it did under pressure since it was made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FairnessReport {
    /// Every tenant's usage.
    pub total: InstanceUsage,
    /// Each tenant with a live instance, by tenant id.
    pub tenants: Vec<(String, InstanceUsage)>,
    /// Idle instances dropped to make room for another plugin's.
    pub reclaimed: u64,
    /// Instances refused at a cap (each failed a call or a start).
    pub refused: u64,
}

/// A plugin whose idle instances the ledger may drop under pressure.
pub(crate) trait Reclaim: Send + Sync {
    /// Drops one idle instance; `false` when it had none.
    fn reclaim_idle(&self) -> bool;
}

struct Holder {
    id: u64,
    tenant: Arc<str>,
    reclaim: Weak<dyn Reclaim>,
}

#[derive(Default)]
struct State {
    pool: InstanceUsage,
    tenants: HashMap<Arc<str>, InstanceUsage>,
    /// By holder id (one per loaded plugin).
    plugins: HashMap<u64, InstanceUsage>,
    holders: Vec<Holder>,
    next_holder: u64,
}

struct Ledger {
    limits: FairnessLimits,
    state: Mutex<State>,
    reclaimed: AtomicU64,
    refused: AtomicU64,
}

/// The ledger of one runtime's live instances (see the
/// [module documentation](self)). Cheap to clone; clones share the ledger.
#[derive(Clone)]
pub struct Fairness {
    ledger: Arc<Ledger>,
}

impl std::fmt::Debug for Fairness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fairness")
            .field("limits", &self.ledger.limits)
            .finish_non_exhaustive()
    }
}

/// One cap an instance would go over.
struct Over {
    setting: &'static str,
    scope: String,
    limit: String,
    /// Whose idle instances may make room: the tenant's (`Some`), anyone's.
    tenant_only: Option<Arc<str>>,
    /// Whether dropping other plugins' instances can help at all.
    reclaimable: bool,
}

/// The most idle instances one new instance may reclaim before it gives up.
const MAX_RECLAIMS: usize = 64;

impl Fairness {
    /// A ledger enforcing `limits`.
    pub fn new(limits: FairnessLimits) -> Self {
        Self {
            ledger: Arc::new(Ledger {
                limits,
                state: Mutex::default(),
                reclaimed: AtomicU64::new(0),
                refused: AtomicU64::new(0),
            }),
        }
    }

    /// The caps it enforces.
    pub fn limits(&self) -> &FairnessLimits {
        &self.ledger.limits
    }

    /// Usage now, and what it did under pressure.
    pub fn report(&self) -> FairnessReport {
        let state = self.ledger.state.lock();
        let mut tenants: Vec<(String, InstanceUsage)> = state
            .tenants
            .iter()
            .filter(|(_, usage)| usage.instances > 0)
            .map(|(tenant, usage)| (tenant.to_string(), *usage))
            .collect();
        tenants.sort_by(|a, b| a.0.cmp(&b.0));
        FairnessReport {
            total: state.pool,
            tenants,
            reclaimed: self.ledger.reclaimed.load(Ordering::Relaxed),
            refused: self.ledger.refused.load(Ordering::Relaxed),
        }
    }

    /// Registers a loaded plugin of `tenant` whose idle instances `reclaim`
    /// drops; its instances take their leases with the returned handle.
    pub(crate) fn register(&self, tenant: &str, reclaim: Weak<dyn Reclaim>) -> Account {
        let mut state = self.ledger.state.lock();
        state.holders.retain(|h| h.reclaim.strong_count() > 0);
        state.next_holder += 1;
        let id = state.next_holder;
        let tenant: Arc<str> = Arc::from(tenant);
        state.holders.push(Holder {
            id,
            tenant: tenant.clone(),
            reclaim,
        });
        Account {
            ledger: self.ledger.clone(),
            id,
            tenant,
        }
    }
}

/// One loaded plugin's account with its runtime's ledger.
pub(crate) struct Account {
    ledger: Arc<Ledger>,
    id: u64,
    tenant: Arc<str>,
}

impl Drop for Account {
    fn drop(&mut self) {
        let mut state = self.ledger.state.lock();
        state.holders.retain(|h| h.id != self.id);
        if state
            .plugins
            .get(&self.id)
            .is_some_and(|u| u.instances == 0)
        {
            state.plugins.remove(&self.id);
        }
    }
}

impl Account {
    /// The right to keep one more instance reserving `memory` bytes live,
    /// reclaiming other plugins' idle instances when a cap is reached, or
    /// the cap that refused it.
    pub(crate) fn lease(&self, plugin: &str, memory: u64) -> Result<Lease, SandboxError> {
        for _ in 0..=MAX_RECLAIMS {
            let (over, candidates) = {
                let mut state = self.ledger.state.lock();
                let Some(over) = self.over(&state, memory) else {
                    return Ok(self.grant(&mut state, memory));
                };
                let candidates = if over.reclaimable {
                    self.candidates(&state, over.tenant_only.as_deref())
                } else {
                    Vec::new()
                };
                (over, candidates)
            };
            // Outside the lock: a reclaimed instance gives its lease back.
            let made_room = candidates.iter().any(|plugin| plugin.reclaim_idle());
            if !made_room {
                self.ledger.refused.fetch_add(1, Ordering::Relaxed);
                return Err(SandboxError::InstanceCap {
                    plugin: plugin.to_owned(),
                    cap: format!("{} is at its cap of {}", over.scope, over.limit),
                    setting: over.setting,
                });
            }
            self.ledger.reclaimed.fetch_add(1, Ordering::Relaxed);
        }
        self.ledger.refused.fetch_add(1, Ordering::Relaxed);
        Err(SandboxError::InstanceCap {
            plugin: plugin.to_owned(),
            cap: format!(
                "the runtime is still at its cap after {MAX_RECLAIMS} idle instances were reclaimed"
            ),
            setting: "pool_instances",
        })
    }

    /// A lease where every cap leaves room now, without reclaiming or
    /// counting a refusal (for an instance that may as well not be kept).
    #[cfg(feature = "extism")]
    pub(crate) fn try_lease(&self, memory: u64) -> Option<Lease> {
        let mut state = self.ledger.state.lock();
        if self.over(&state, memory).is_some() {
            return None;
        }
        Some(self.grant(&mut state, memory))
    }

    fn grant(&self, state: &mut State, memory: u64) -> Lease {
        state.pool.add(memory);
        state
            .tenants
            .entry(self.tenant.clone())
            .or_default()
            .add(memory);
        state.plugins.entry(self.id).or_default().add(memory);
        Lease {
            ledger: self.ledger.clone(),
            id: self.id,
            tenant: self.tenant.clone(),
            memory,
        }
    }

    /// The first cap one more instance of `memory` bytes would go over.
    fn over(&self, state: &State, memory: u64) -> Option<Over> {
        let limits = &self.ledger.limits;
        let plugin = state.plugins.get(&self.id).copied().unwrap_or_default();
        let tenant = state.tenants.get(&self.tenant).copied().unwrap_or_default();
        let tenant_name = || format!("tenant `{}`", self.tenant);
        let memory_limit = |cap: u64, used: u64| {
            format!(
                "{} of instance memory ({} in use, the instance needs {})",
                ByteSize(cap),
                ByteSize(used),
                ByteSize(memory)
            )
        };
        if plugin.memory + memory > limits.plugin_memory {
            return Some(Over {
                setting: "plugin_memory",
                scope: "the plugin".to_owned(),
                limit: memory_limit(limits.plugin_memory, plugin.memory),
                tenant_only: None,
                reclaimable: false,
            });
        }
        if tenant.instances + 1 > u64::from(limits.tenant_instances) {
            return Some(Over {
                setting: "tenant_instances",
                scope: tenant_name(),
                limit: format!("{} live instances", limits.tenant_instances),
                tenant_only: Some(self.tenant.clone()),
                reclaimable: true,
            });
        }
        if tenant.memory + memory > limits.tenant_memory {
            return Some(Over {
                setting: "tenant_memory",
                scope: tenant_name(),
                limit: memory_limit(limits.tenant_memory, tenant.memory),
                tenant_only: Some(self.tenant.clone()),
                reclaimable: true,
            });
        }
        if state.pool.instances + 1 > u64::from(limits.pool_instances) {
            return Some(Over {
                setting: "pool_instances",
                scope: "the runtime".to_owned(),
                limit: format!("{} live instances", limits.pool_instances),
                tenant_only: None,
                reclaimable: true,
            });
        }
        if state.pool.memory + memory > limits.pool_memory {
            return Some(Over {
                setting: "pool_memory",
                scope: "the runtime".to_owned(),
                limit: memory_limit(limits.pool_memory, state.pool.memory),
                tenant_only: None,
                reclaimable: true,
            });
        }
        None
    }

    /// Other plugins whose idle instances may make room: those of
    /// `tenant`, or of every tenant, the tenant using most first.
    fn candidates(&self, state: &State, tenant: Option<&str>) -> Vec<Arc<dyn Reclaim>> {
        let mut holders: Vec<(u64, Arc<dyn Reclaim>)> = state
            .holders
            .iter()
            .filter(|h| h.id != self.id)
            .filter(|h| tenant.is_none_or(|t| *h.tenant == *t))
            .filter(|h| state.plugins.get(&h.id).is_some_and(|u| u.instances > 0))
            .filter_map(|h| {
                let used = state.tenants.get(&h.tenant).map_or(0, |u| u.instances);
                h.reclaim.upgrade().map(|r| (used, r))
            })
            .collect();
        // Stable: among equals, the plugin registered first goes first.
        holders.sort_by_key(|(used, _)| std::cmp::Reverse(*used));
        holders.into_iter().map(|(_, r)| r).collect()
    }
}

/// One live instance's place in the ledger, given back on drop.
pub(crate) struct Lease {
    ledger: Arc<Ledger>,
    id: u64,
    tenant: Arc<str>,
    memory: u64,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut state = self.ledger.state.lock();
        state.pool.remove(self.memory);
        if let Some(usage) = state.tenants.get_mut(&self.tenant) {
            usage.remove(self.memory);
            if usage.instances == 0 {
                state.tenants.remove(&self.tenant);
            }
        }
        if let Some(usage) = state.plugins.get_mut(&self.id) {
            usage.remove(self.memory);
        }
        let id = self.id;
        if state.plugins.get(&id).is_some_and(|u| u.instances == 0)
            && !state.holders.iter().any(|h| h.id == id)
        {
            state.plugins.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plugin with `idle` idle instances, each holding a lease.
    struct Idle {
        leases: Mutex<Vec<Lease>>,
    }

    impl Reclaim for Idle {
        fn reclaim_idle(&self) -> bool {
            let lease = self.leases.lock().pop();
            lease.is_some()
        }
    }

    fn plugin(fairness: &Fairness, tenant: &str) -> (Arc<Idle>, Account) {
        let idle = Arc::new(Idle {
            leases: Mutex::new(Vec::new()),
        });
        let weak: Weak<dyn Reclaim> = Arc::downgrade(&idle) as Weak<dyn Reclaim>;
        let account = fairness.register(tenant, weak);
        (idle, account)
    }

    const MIB: u64 = 1 << 20;

    #[test]
    fn defaults_fit_the_example_plugins_and_stay_in_proportion() {
        let limits = FairnessLimits::default();
        assert_eq!(limits.pool_instances, 1000);
        assert_eq!(limits.tenant_instances, 250);
        assert_eq!(limits.pool_memory, 1000 * 64 * MIB);
        // The largest example (1 GiB per instance, 4 instances) fits one
        // plugin's share.
        assert!(limits.plugin_memory >= 4 << 30);
        assert!(limits.check_instance("p", 1 << 30).is_ok());
        // A small pool keeps room for one instance of the largest memory.
        let small = FairnessLimits::for_pool(8);
        assert_eq!(small.tenant_instances, 2);
        assert_eq!(small.pool_memory, 4 << 30);
        assert!(small.check_instance("p", 4 << 30).is_ok());
        let err = small
            .with_plugin_memory(64 * MIB)
            .check_instance("p", 1 << 30)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "plugin p: limits.memory is 1GiB; this host lets each plugin reserve at most 64MiB \
             (FairnessLimits::plugin_memory)"
        );
    }

    /// Each row: the limits, then the leases asked for in order as (plugin:
    /// 0 and 1 of tenant `a`, 2 of tenant `b`; memory in MiB; whether the
    /// instance stays idle, reclaimable), and what each gets: `ok`, `ok+N`
    /// (after reclaiming N idle instances) or the refused setting.
    #[test]
    fn caps_hold_and_idle_instances_make_room() {
        type Ask = (usize, u64, bool, &'static str);
        let base = FairnessLimits::for_pool(1000);
        let table: &[(&str, FairnessLimits, &[Ask])] = &[
            (
                "a tenant at its instance cap takes its own idle one, never another tenant's",
                base.with_tenant_instances(2),
                &[
                    (0, 1, true, "ok"),
                    (2, 1, true, "ok"),
                    (1, 1, false, "ok"),
                    (1, 1, false, "ok+1"),
                    (1, 1, false, "tenant_instances"),
                    (2, 1, false, "ok"),
                ],
            ),
            (
                "the runtime at its cap takes an idle instance of the busiest tenant",
                base.with_pool_instances(3),
                &[
                    (0, 1, true, "ok"),
                    (1, 1, true, "ok"),
                    (2, 1, false, "ok"),
                    (2, 1, false, "ok+1"),
                    (2, 1, false, "ok+1"),
                    (2, 1, false, "pool_instances"),
                ],
            ),
            (
                "memory caps count each instance's limit",
                base.with_tenant_memory(40 * MIB).with_pool_memory(60 * MIB),
                &[
                    (0, 32, false, "ok"),
                    (1, 16, false, "tenant_memory"),
                    (2, 16, false, "ok"),
                    (2, 16, false, "pool_memory"),
                    (1, 8, false, "ok"),
                ],
            ),
            (
                "a plugin's memory cap is its own: no other plugin's instance is dropped for it",
                base.with_plugin_memory(32 * MIB),
                &[
                    (1, 16, true, "ok"),
                    (0, 16, false, "ok"),
                    (0, 16, false, "ok"),
                    (0, 16, false, "plugin_memory"),
                ],
            ),
        ];
        for (case, limits, asks) in table {
            let fairness = Fairness::new(*limits);
            let tenants = ["a", "b"];
            let plugins: Vec<(Arc<Idle>, Account)> = [0, 0, 1]
                .iter()
                .map(|t| plugin(&fairness, tenants[*t]))
                .collect();
            let mut running = Vec::new();
            for (n, (index, mib, idle, expected)) in asks.iter().enumerate() {
                let before = fairness.report().reclaimed;
                let (holder, account) = &plugins[*index];
                let got = match account.lease("p", mib * MIB) {
                    Ok(lease) => {
                        if *idle {
                            holder.leases.lock().push(lease);
                        } else {
                            running.push(lease);
                        }
                        match fairness.report().reclaimed - before {
                            0 => "ok".to_owned(),
                            n => format!("ok+{n}"),
                        }
                    }
                    Err(SandboxError::InstanceCap { setting, .. }) => setting.to_owned(),
                    Err(other) => panic!("{case}: {other}"),
                };
                assert_eq!(got, *expected, "{case}: ask {n}");
            }
            drop(running);
            for (holder, _) in &plugins {
                holder.leases.lock().clear();
            }
            let report = fairness.report();
            assert_eq!(report.total, InstanceUsage::default(), "{case}");
            assert!(report.tenants.is_empty(), "{case}");
        }
    }

    #[test]
    fn a_refusal_names_the_cap_and_its_setting() {
        let fairness = Fairness::new(FairnessLimits::for_pool(8).with_tenant_instances(1));
        let (_holder, account) = plugin(&fairness, "acme");
        let _lease = account.lease("acme/p", MIB).unwrap();
        let err = account.lease("acme/p", MIB).err().unwrap();
        assert_eq!(err.code(), "instance_cap");
        assert_eq!(
            err.to_string(),
            "plugin acme/p: no instance for this call: tenant `acme` is at its cap of 1 live \
             instances (FairnessLimits::tenant_instances), and no idle instance of another \
             plugin could be reclaimed"
        );
        assert_eq!(fairness.report().refused, 1);
        assert_eq!(
            fairness.report().tenants,
            vec![(
                "acme".to_owned(),
                InstanceUsage {
                    instances: 1,
                    memory: MIB
                }
            )]
        );
    }
}
