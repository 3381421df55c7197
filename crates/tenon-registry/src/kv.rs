//! Plugin KV: a small key-value store per plugin and tenant, served to the
//! sandbox, with a quota in bytes and one in keys.

use crate::error::RegistryError;

/// A plugin's KV quota: the most bytes of keys plus values, and the most
/// keys, it may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KvQuota {
    /// Bytes of keys and values, summed over the plugin's entries.
    pub max_bytes: u64,
    /// Number of keys.
    pub max_keys: u64,
}

impl KvQuota {
    /// No limit.
    pub const UNLIMITED: Self = Self {
        max_bytes: u64::MAX,
        max_keys: u64::MAX,
    };

    /// At most `max_bytes`, with any number of keys.
    pub const fn bytes(max_bytes: u64) -> Self {
        Self {
            max_bytes,
            max_keys: u64::MAX,
        }
    }

    /// This quota with at most `max_keys` keys.
    pub const fn with_max_keys(mut self, max_keys: u64) -> Self {
        self.max_keys = max_keys;
        self
    }

    /// Refuses a write that adds a key when the plugin already holds
    /// `keys` of them and the quota allows no more.
    pub(crate) fn check_new_key(
        &self,
        tenant: &crate::TenantId,
        plugin: &tenon_manifest::PluginId,
        keys: u64,
        adds_key: bool,
    ) -> Result<(), RegistryError> {
        if adds_key && keys >= self.max_keys {
            return Err(RegistryError::KeyQuotaExceeded {
                tenant: tenant.clone(),
                plugin: plugin.clone(),
                max_keys: self.max_keys,
                keys,
            });
        }
        Ok(())
    }
}

/// What a plugin's KV entries take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct KvUsage {
    /// Bytes of keys and values.
    pub bytes: u64,
    /// Number of keys.
    pub keys: u64,
}

/// Which keys [`kv_list`](crate::RegistryStore::kv_list) returns, in
/// byte order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvList {
    /// Only keys starting with this (all when empty).
    pub prefix: String,
    /// Only keys after this one (the last key of the previous page).
    pub after: Option<String>,
    /// At most this many (at least 1).
    pub limit: usize,
}

impl KvList {
    /// The default page size.
    pub const DEFAULT_LIMIT: usize = 100;

    /// Keys starting with `prefix`.
    pub fn prefix(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            after: None,
            limit: Self::DEFAULT_LIMIT,
        }
    }

    /// After `key`.
    pub fn with_after(mut self, key: Option<&str>) -> Self {
        self.after = key.map(str::to_owned);
        self
    }

    /// At most `limit`.
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    pub(crate) fn checked_limit(&self) -> Result<usize, RegistryError> {
        crate::page::check_limit(self.limit, "kv page size", "key")
    }

    /// The lowest key the page may hold (inclusive) and whether it is
    /// exclusive (an `after` key), and the first key past the prefix.
    pub(crate) fn range(&self) -> (Vec<u8>, bool, Option<Vec<u8>>) {
        let prefix = self.prefix.as_bytes();
        let (lower, exclusive) = match &self.after {
            Some(after) if after.as_bytes() >= prefix => (after.as_bytes().to_vec(), true),
            _ => (prefix.to_vec(), false),
        };
        (lower, exclusive, prefix_end(prefix))
    }

    /// Whether the memory backend keeps this record.
    #[cfg_attr(not(feature = "memory"), allow(dead_code))]
    pub(crate) fn matches(&self, key: &[u8]) -> bool {
        key.starts_with(self.prefix.as_bytes())
            && self
                .after
                .as_ref()
                .is_none_or(|after| key > after.as_bytes())
    }
}

impl Default for KvList {
    fn default() -> Self {
        Self::prefix("")
    }
}

/// The longest a KV key may be, in bytes.
pub const MAX_KV_KEY_LEN: usize = 1024;

pub(crate) fn check_key(key: &str) -> Result<(), RegistryError> {
    if key.is_empty() || key.len() > MAX_KV_KEY_LEN {
        return Err(RegistryError::invalid(
            "kv key",
            key,
            format!(
                "a key is 1 to {MAX_KV_KEY_LEN} bytes long, not {}",
                key.len()
            ),
        ));
    }
    Ok(())
}

/// The size a quota counts for an entry.
pub(crate) fn entry_size(key: &str, value: &[u8]) -> u64 {
    (key.len() + value.len()) as u64
}

/// The smallest byte string greater than every string starting with
/// `prefix`, if there is one.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends() {
        let check = |prefix: &[u8], expected: Option<&[u8]>| {
            assert_eq!(prefix_end(prefix).as_deref(), expected, "{prefix:?}");
        };
        check(b"", None);
        check(b"a", Some(b"b"));
        check(b"user/", Some(b"user0"));
        check(&[b'a', 0xff], Some(b"b"));
        check(&[0xff, 0xff], None);
    }
}
