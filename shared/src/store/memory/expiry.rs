//! A map whose items expire, with a time-ordered index of when they do, so that reclaiming
//! expired items costs in proportion to what expired, never to what lives.
//!
//! The index is a queue of per-second buckets (`expiry → keys`). It is written on every insert
//! whose expiry differs from the replaced item's, and never edited on removal or replacement:
//! an entry may therefore be stale (the key was removed, or now holds an item with another
//! expiry or none). The sweep checks the item's current expiry before removing it, so a stale
//! entry is simply dropped; each item with an expiry has at least one entry at that expiry.
//!
//! `GRACE` delays reclaiming by that many seconds past expiry, for items an operation holding
//! an earlier `now` must still find (reads keep checking expiry against their own `now`).

use crate::domain::UnixTime;
use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

/// An item that may stop existing at a point in time (`now >= expiry`).
pub(super) trait Expires {
    fn expiry(&self) -> Option<UnixTime>;
}

/// Counters stored with their own expiry.
impl Expires for (u32, UnixTime) {
    fn expiry(&self) -> Option<UnixTime> {
        Some(self.1)
    }
}

pub(super) struct Expiring<K, V, const GRACE: i64 = 0> {
    items: HashMap<K, V>,
    due: BTreeMap<UnixTime, Vec<K>>,
}

impl<K, V, const GRACE: i64> Default for Expiring<K, V, GRACE> {
    fn default() -> Self {
        Self {
            items: HashMap::new(),
            due: BTreeMap::new(),
        }
    }
}

impl<K: Hash + Eq + Clone, V: Expires, const GRACE: i64> Expiring<K, V, GRACE> {
    pub(super) fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.items.get(key)
    }

    pub(super) fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.items.contains_key(key)
    }

    pub(super) fn keys(&self) -> impl Iterator<Item = &K> {
        self.items.keys()
    }

    pub(super) fn insert(&mut self, key: K, value: V) -> Option<V> {
        let expiry = value.expiry();
        let old = self.items.insert(key.clone(), value);
        if let Some(at) = expiry
            && old.as_ref().is_none_or(|o| o.expiry() != expiry)
        {
            self.due.entry(at).or_default().push(key);
        }
        old
    }

    pub(super) fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.items.remove(key)
    }

    /// Changes an item in place, indexing it again if its expiry changed.
    pub(super) fn update<Q, R>(&mut self, key: &Q, change: impl FnOnce(&mut V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (owned, value) = self.items.get_key_value(key)?;
        let (owned, before) = (owned.clone(), value.expiry());
        let out = change(self.items.get_mut(key)?);
        self.reindex(owned, before);
        Some(out)
    }

    /// Changes every item `change` returns true for, indexing again those whose expiry changed.
    pub(super) fn update_all(&mut self, mut change: impl FnMut(&K, &mut V) -> bool) {
        let mut moved = Vec::new();
        for (key, value) in self.items.iter_mut() {
            let before = value.expiry();
            if change(key, value) && value.expiry() != before {
                moved.push((key.clone(), before));
            }
        }
        for (key, before) in moved {
            self.reindex(key, before);
        }
    }

    fn reindex(&mut self, key: K, before: Option<UnixTime>) {
        if let Some(at) = self.items.get(&key).and_then(V::expiry)
            && before != Some(at)
        {
            self.due.entry(at).or_default().push(key);
        }
    }

    /// Removes items expired at `now` (`GRACE` seconds ago), visiting at most `budget` index entries (the oldest
    /// first). Returns how many entries it visited.
    pub(super) fn sweep(&mut self, now: UnixTime, budget: usize) -> usize {
        let mut visited = 0;
        while visited < budget {
            let Some(mut bucket) = self.due.first_entry() else {
                break;
            };
            let at = *bucket.key();
            if at > now.saturating_sub(GRACE) {
                break;
            }
            let Some(key) = bucket.get_mut().pop() else {
                bucket.remove();
                continue;
            };
            if bucket.get().is_empty() {
                bucket.remove();
            }
            visited += 1;
            // Only the item this entry was written for: one replaced since has another
            // expiry (and its own entry), or none (an approved client).
            if self.items.get(&key).and_then(V::expiry) == Some(at) {
                self.items.remove(&key);
            }
        }
        visited
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.items.len()
    }
}

impl<K: Hash + Eq + Clone, const GRACE: i64> Expiring<K, (u32, UnixTime), GRACE> {
    /// A counter's value at `now`: zero once its window has ended, whether or not it was
    /// reclaimed yet.
    pub(super) fn live_count(&self, key: &K, now: UnixTime) -> u32 {
        match self.items.get(key) {
            Some(&(n, exp)) if now < exp => n,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Item(Option<UnixTime>);

    impl Expires for Item {
        fn expiry(&self) -> Option<UnixTime> {
            self.0
        }
    }

    #[test]
    fn a_sweep_removes_what_expired_and_keeps_the_rest() {
        let mut m: Expiring<_, _> = Expiring::default();
        m.insert("a", Item(Some(10)));
        m.insert("b", Item(Some(20)));
        m.insert("forever", Item(None));
        assert_eq!(m.sweep(9, usize::MAX), 0);
        assert_eq!(m.len(), 3);
        assert_eq!(m.sweep(10, usize::MAX), 1);
        assert_eq!(m.get("a"), None);
        assert_eq!(m.get("b"), Some(&Item(Some(20))));
        assert_eq!(m.sweep(1_000, usize::MAX), 1);
        assert_eq!(m.get("forever"), Some(&Item(None)));
    }

    #[test]
    fn an_item_replaced_with_a_later_expiry_survives_a_sweep_at_the_old_one() {
        let mut m: Expiring<_, _> = Expiring::default();
        m.insert("a", Item(Some(10)));
        m.insert("a", Item(Some(30)));
        m.insert("b", Item(Some(10)));
        m.insert("b", Item(None));
        m.update("c", |_| ());
        m.sweep(10, usize::MAX);
        assert_eq!(m.get("a"), Some(&Item(Some(30))));
        assert_eq!(m.get("b"), Some(&Item(None)));
        m.sweep(30, usize::MAX);
        assert_eq!(m.get("a"), None);
    }

    #[test]
    fn an_expiry_changed_in_place_is_indexed_again() {
        let mut m: Expiring<_, _> = Expiring::default();
        m.insert("a", Item(Some(10)));
        m.insert("b", Item(Some(10)));
        m.update("a", |v| v.0 = Some(5));
        m.update_all(|k, v| {
            *k == "b" && {
                v.0 = Some(40);
                true
            }
        });
        m.sweep(5, usize::MAX);
        assert_eq!(m.get("a"), None);
        m.sweep(39, usize::MAX);
        assert_eq!(m.get("b"), Some(&Item(Some(40))));
        m.sweep(40, usize::MAX);
        assert_eq!(m.len(), 0);
    }

    #[test]
    fn grace_delays_reclaiming() {
        let mut m = Expiring::<_, _, 60>::default();
        m.insert("a", Item(Some(10)));
        assert_eq!(m.sweep(69, usize::MAX), 0);
        assert_eq!(m.sweep(70, usize::MAX), 1);
        assert_eq!(m.len(), 0);
    }

    #[test]
    fn a_removed_and_reinserted_item_lives_to_its_new_expiry() {
        let mut m: Expiring<_, _> = Expiring::default();
        m.insert("a", Item(Some(10)));
        m.remove("a");
        m.insert("a", Item(Some(50)));
        m.sweep(10, usize::MAX);
        assert_eq!(m.get("a"), Some(&Item(Some(50))));
    }

    #[test]
    fn sweep_work_is_bounded_by_what_expired_and_by_the_budget() {
        let mut m: Expiring<_, _> = Expiring::default();
        for i in 0..10_000u32 {
            m.insert(i, Item(Some(1_000 + UnixTime::from(i % 100))));
        }
        for i in 10_000..10_050u32 {
            m.insert(i, Item(Some(5)));
        }
        // 50 expired among 10,050 live items: 50 entries visited, nothing else.
        assert_eq!(m.sweep(5, usize::MAX), 50);
        assert_eq!(m.len(), 10_000);
        assert_eq!(m.sweep(999, usize::MAX), 0);
        // 100 expire at 1,000; a budget of 30 takes them over four calls.
        assert_eq!(m.sweep(1_000, 30), 30);
        assert_eq!(m.len(), 9_970);
        assert_eq!(m.sweep(1_000, 30), 30);
        assert_eq!(m.sweep(1_000, 30), 30);
        assert_eq!(m.sweep(1_000, 30), 10);
        assert_eq!(m.len(), 9_900);
    }
}
