//! Fixed-window request counts per key in a bounded table, for both
//! servers' rate limits.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

/// Request counts per key in numbered fixed windows (a caller numbers them,
/// for example minutes since an epoch), at most `capacity` keys: a new key
/// when the table is full evicts the key seen longest ago (so a client
/// being limited, which keeps coming, keeps its count while a flood of
/// new keys only pushes out the idle ones). Each request costs O(log n);
/// nothing scans the table.
#[derive(Debug)]
pub struct RateWindows<K> {
    capacity: usize,
    next: u64,
    slots: HashMap<K, Slot>,
    by_age: BTreeMap<u64, K>,
    on_evict: Option<fn()>,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    window: i64,
    count: u32,
    seen: u64,
}

impl<K: Eq + Hash + Clone> RateWindows<K> {
    /// An empty table of at most `capacity` keys (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            next: 0,
            slots: HashMap::new(),
            by_age: BTreeMap::new(),
            on_evict: None,
        }
    }

    /// Calls `on_evict` each time a key is evicted (to count evictions).
    #[must_use]
    pub fn on_evict(mut self, on_evict: fn()) -> Self {
        self.on_evict = Some(on_evict);
        self
    }

    /// Counts a request of `key` in window number `window`; `false` when it
    /// already made `limit` requests in that window (the refused one counts
    /// as seen, not as a request).
    pub fn admit(&mut self, key: &K, window: i64, limit: u32) -> bool {
        let seen = self.next;
        self.next += 1;
        let slot = match self.slots.get_mut(key) {
            Some(slot) => {
                self.by_age.remove(&slot.seen);
                slot
            }
            None => {
                if self.slots.len() >= self.capacity
                    && let Some((_, oldest)) = self.by_age.pop_first()
                {
                    self.slots.remove(&oldest);
                    if let Some(on_evict) = self.on_evict {
                        on_evict();
                    }
                }
                self.slots.entry(key.clone()).or_insert(Slot {
                    window,
                    count: 0,
                    seen,
                })
            }
        };
        slot.seen = seen;
        self.by_age.insert(seen, key.clone());
        if slot.window != window {
            slot.window = window;
            slot.count = 0;
        }
        if slot.count >= limit {
            return false;
        }
        slot.count += 1;
        true
    }

    /// How many keys the table holds.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the table holds no key.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_table_evicts_the_key_seen_longest_ago() {
        let mut windows = RateWindows::new(2);
        assert!(windows.admit(&"a", 0, 1));
        assert!(windows.admit(&"b", 0, 1));
        assert!(!windows.admit(&"a", 0, 1), "a is over its limit");
        assert!(windows.admit(&"c", 0, 1), "c evicts b, seen longest ago");
        assert_eq!(windows.len(), 2);
        assert!(!windows.admit(&"a", 0, 1), "a kept its count");
        assert!(windows.admit(&"b", 0, 1), "b starts over");
        assert!(windows.admit(&"a", 1, 1), "a new window starts over");
        for n in 0..1000 {
            windows.admit(&"x", n, 1);
        }
        assert_eq!(windows.len(), 2);
    }
}
