//! The change feed: how hosts sharing a registry learn of each other's
//! changes without polling.

use serde::{Deserialize, Serialize};
use tenon_manifest::PluginId;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::tenant::TenantId;

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A plugin was inserted.
    PluginInserted,
    /// A plugin's row changed (state, enabled, current version…).
    PluginUpdated,
    /// A plugin was deleted.
    PluginDeleted,
    /// A version was added or removed.
    VersionsChanged,
    /// A plugin's configuration changed.
    ConfigChanged,
    /// A grant was recorded or revoked.
    GrantsChanged,
    /// Events were appended to the tenant's log.
    EventsAppended,
    /// Artifacts were stored or removed.
    ArtifactsChanged,
}

/// One committed change, announced after its transaction committed.
///
/// A change says what to reload, not the new data: read it from the store.
/// Plugin KV writes are not announced (plugins read their KV through the
/// store, which always has the current value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The tenant.
    pub tenant: TenantId,
    /// The plugin, when the change concerns one.
    pub plugin: Option<PluginId>,
    /// What changed.
    pub kind: ChangeKind,
    /// The plugin's row version after a plugin change, or the config
    /// revision after a config change.
    pub row_version: Option<u64>,
    /// The store instance that made the change (see
    /// [`StoreInfo::instance`](crate::StoreInfo::instance)): a host can skip
    /// its own.
    pub origin: Uuid,
}

/// Why a subscription could not deliver the next change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeFeedError {
    /// The subscriber fell behind and changes were dropped. Reload what you
    /// cache, then keep receiving.
    #[error(
        "the change feed subscriber fell behind and missed {missed} changes; reload cached state"
    )]
    Lagged {
        /// How many changes were dropped.
        missed: u64,
    },
    /// The feed may have missed changes: its PostgreSQL connection was lost
    /// and re-established, or other processes' changes on an SQLite file
    /// were pruned before it read them. Reload what you cache, then keep
    /// receiving.
    #[error(
        "the change feed was interrupted ({reason}); changes may have been missed; reload cached state"
    )]
    Interrupted {
        /// What happened.
        reason: String,
    },
    /// The store was dropped: no more changes will come.
    #[error("the change feed is closed")]
    Closed,
}

impl ChangeFeedError {
    /// Whether the subscriber should reload its state and keep receiving.
    pub fn needs_resync(&self) -> bool {
        !matches!(self, Self::Closed)
    }
}

/// What travels on a store's internal broadcast channel.
#[derive(Debug, Clone)]
pub(crate) enum FeedItem {
    Change(Change),
    /// The feed may have missed changes.
    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    Interrupted(String),
}

/// A subscription to a store's changes, from
/// [`subscribe_changes`](crate::RegistryStore::subscribe_changes).
#[derive(Debug)]
pub struct ChangeSubscription {
    receiver: broadcast::Receiver<FeedItem>,
}

impl ChangeSubscription {
    pub(crate) fn new(receiver: broadcast::Receiver<FeedItem>) -> Self {
        Self { receiver }
    }

    /// The next change. An error other than
    /// [`Closed`](ChangeFeedError::Closed) means some changes may have been
    /// missed: reload, then call again.
    pub async fn recv(&mut self) -> Result<Change, ChangeFeedError> {
        match self.receiver.recv().await {
            Ok(item) => item.into_result(),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                Err(ChangeFeedError::Lagged { missed })
            }
            Err(broadcast::error::RecvError::Closed) => Err(ChangeFeedError::Closed),
        }
    }

    /// The next change if one is already waiting.
    pub fn try_recv(&mut self) -> Result<Option<Change>, ChangeFeedError> {
        match self.receiver.try_recv() {
            Ok(item) => item.into_result().map(Some),
            Err(broadcast::error::TryRecvError::Empty) => Ok(None),
            Err(broadcast::error::TryRecvError::Lagged(missed)) => {
                Err(ChangeFeedError::Lagged { missed })
            }
            Err(broadcast::error::TryRecvError::Closed) => Err(ChangeFeedError::Closed),
        }
    }
}

impl FeedItem {
    fn into_result(self) -> Result<Change, ChangeFeedError> {
        match self {
            Self::Change(change) => Ok(change),
            Self::Interrupted(reason) => Err(ChangeFeedError::Interrupted { reason }),
        }
    }
}

/// The sending side shared by the backends.
#[derive(Debug)]
pub(crate) struct ChangeHub {
    sender: broadcast::Sender<FeedItem>,
}

impl ChangeHub {
    pub(crate) fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Self { sender }
    }

    pub(crate) fn subscribe(&self) -> ChangeSubscription {
        ChangeSubscription::new(self.sender.subscribe())
    }

    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) fn sender(&self) -> broadcast::Sender<FeedItem> {
        self.sender.clone()
    }

    /// Announces committed changes (no subscriber is not an error).
    #[cfg_attr(not(any(feature = "memory", feature = "sqlite")), allow(dead_code))]
    pub(crate) fn publish(&self, changes: Vec<Change>) {
        for change in changes {
            let _ = self.sender.send(FeedItem::Change(change));
        }
    }
}
