//! [`HookContext`]: who and what a dispatch is for, and the state its handlers share.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::ser::{Serialize, SerializeStruct, Serializer};
use serde_json::{Map, Value};
use uuid::Uuid;

/// The context of one dispatch: an execution id (UUID v7, so ids sort by
/// time), the tenant, optional user and session ids, when it started, and a
/// [`StateMap`] the handlers of the dispatch share.
///
/// Cloning is cheap and the clone shares the state map: a host that keeps a
/// clone can read what the handlers left in it.
///
/// Serializes (for a plugin that receives it as JSON) as
/// `{"execution_id", "tenant", "user_id"?, "session_id"?, "timestamp_ms", "state"}`.
#[derive(Clone)]
pub struct HookContext {
    execution_id: Uuid,
    tenant: Arc<str>,
    user_id: Option<Arc<str>>,
    session_id: Option<Arc<str>>,
    timestamp: SystemTime,
    state: StateMap,
}

impl HookContext {
    /// A new context for `tenant` with a fresh execution id, stamped now.
    pub fn new(tenant: &str) -> Self {
        Self {
            execution_id: Uuid::now_v7(),
            tenant: Arc::from(tenant),
            user_id: None,
            session_id: None,
            timestamp: SystemTime::now(),
            state: StateMap::new(),
        }
    }

    /// Sets the user.
    pub fn with_user(mut self, user_id: &str) -> Self {
        self.user_id = Some(Arc::from(user_id));
        self
    }

    /// Sets the session.
    pub fn with_session(mut self, session_id: &str) -> Self {
        self.session_id = Some(Arc::from(session_id));
        self
    }

    /// Replaces the execution id (to continue one the host already has).
    pub fn with_execution_id(mut self, execution_id: Uuid) -> Self {
        self.execution_id = execution_id;
        self
    }

    /// Replaces the timestamp.
    pub fn with_timestamp(mut self, timestamp: SystemTime) -> Self {
        self.timestamp = timestamp;
        self
    }

    /// The execution id; every receipt of the dispatch carries it.
    pub fn execution_id(&self) -> Uuid {
        self.execution_id
    }

    /// The tenant.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The user, if any.
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    /// The session, if any.
    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    /// When the context was created.
    pub fn timestamp(&self) -> SystemTime {
        self.timestamp
    }

    /// The state shared by the handlers of this dispatch.
    pub fn state(&self) -> &StateMap {
        &self.state
    }
}

impl fmt::Debug for HookContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookContext")
            .field("execution_id", &self.execution_id)
            .field("tenant", &self.tenant)
            .field("user_id", &self.user_id)
            .field("session_id", &self.session_id)
            .field("timestamp", &self.timestamp)
            .field("state", &self.state)
            .finish()
    }
}

impl Serialize for HookContext {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let optional = usize::from(self.user_id.is_some()) + usize::from(self.session_id.is_some());
        let mut s = serializer.serialize_struct("HookContext", 4 + optional)?;
        s.serialize_field("execution_id", &self.execution_id)?;
        s.serialize_field("tenant", &*self.tenant)?;
        if let Some(user) = &self.user_id {
            s.serialize_field("user_id", &**user)?;
        }
        if let Some(session) = &self.session_id {
            s.serialize_field("session_id", &**session)?;
        }
        let millis = self
            .timestamp
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        s.serialize_field("timestamp_ms", &millis)?;
        s.serialize_field("state", &*self.state.lock())?;
        s.end()
    }
}

/// A JSON map shared by the handlers of one dispatch (and by every clone of
/// its [`HookContext`]). Handlers of one dispatch run one after another, so
/// the lock inside is never contended by them; it makes the map safe to share
/// with whatever else holds a clone.
#[derive(Clone, Default)]
pub struct StateMap {
    inner: Arc<Mutex<Map<String, Value>>>,
}

impl StateMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Map<String, Value>> {
        // A panic while holding the lock cannot leave the map half-written.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A copy of the value at `key`.
    pub fn get(&self, key: &str) -> Option<Value> {
        self.lock().get(key).cloned()
    }

    /// Sets `key`, returning the previous value.
    pub fn insert(&self, key: impl Into<String>, value: Value) -> Option<Value> {
        self.lock().insert(key.into(), value)
    }

    /// Removes `key`, returning its value.
    pub fn remove(&self, key: &str) -> Option<Value> {
        self.lock().shift_remove(key)
    }

    /// Whether `key` is set.
    pub fn contains_key(&self, key: &str) -> bool {
        self.lock().contains_key(key)
    }

    /// How many keys are set.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no key is set.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Runs `f` with the map locked, for read-modify-write updates.
    pub fn update<R>(&self, f: impl FnOnce(&mut Map<String, Value>) -> R) -> R {
        f(&mut self.lock())
    }

    /// A copy of the whole map.
    pub fn snapshot(&self) -> Map<String, Value> {
        self.lock().clone()
    }
}

impl fmt::Debug for StateMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.lock().iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn clones_share_state_and_serialize() {
        let ctx = HookContext::new("acme").with_user("u1").with_session("s1");
        let clone = ctx.clone();
        clone.state().insert("seen", json!(1));
        assert_eq!(ctx.state().get("seen"), Some(json!(1)));
        ctx.state().update(|m| m.insert("n".into(), json!(2)));
        assert_eq!(clone.state().len(), 2);
        assert_eq!(clone.state().remove("seen"), Some(json!(1)));

        let value = serde_json::to_value(&ctx).expect("serializes");
        assert_eq!(value["tenant"], "acme");
        assert_eq!(value["user_id"], "u1");
        assert_eq!(value["session_id"], "s1");
        assert_eq!(value["state"], json!({"n": 2}));
        assert_eq!(value["execution_id"], json!(ctx.execution_id().to_string()));
        assert!(value["timestamp_ms"].as_u64().is_some_and(|t| t > 0));

        let bare = serde_json::to_value(HookContext::new("t")).expect("serializes");
        assert!(bare.get("user_id").is_none());
    }

    #[test]
    fn execution_ids_are_unique_and_time_ordered() {
        let a = HookContext::new("t").execution_id();
        let b = HookContext::new("t").execution_id();
        assert_ne!(a, b);
        assert_eq!(a.get_version_num(), 7);
    }
}
