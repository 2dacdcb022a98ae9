//! A bounded map that forgets the least recently inserted half when full.
//!
//! Two generations: inserts go to the young one; when it reaches its
//! capacity, the old one is dropped and the young one becomes old. Lookups
//! see both. Cheap, deterministic, and bounded at twice the capacity, which is
//! all the engine needs to keep its memory flat on a long-running agent.

use std::hash::Hash;

use rustc_hash::FxHashMap;

#[derive(Clone)]
pub(crate) struct Recent<K, V> {
    young: FxHashMap<K, V>,
    old: FxHashMap<K, V>,
    capacity: usize,
}

impl<K: Hash + Eq, V> Default for Recent<K, V> {
    /// Room for the files one actor touches in a working session.
    fn default() -> Self {
        Recent::new(8 * 1024)
    }
}

impl<K: Hash + Eq, V> Recent<K, V> {
    pub(crate) fn new(capacity: usize) -> Self {
        Recent { young: FxHashMap::default(), old: FxHashMap::default(), capacity: capacity.max(1) }
    }

    pub(crate) fn insert(&mut self, key: K, value: V) {
        self.old.remove(&key);
        if self.young.len() >= self.capacity {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(key, value);
    }

    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        self.young.get(key).or_else(|| self.old.get(key))
    }

    pub(crate) fn contains(&self, key: &K) -> bool {
        self.get(key).is_some()
    }

    /// Every key held, young generation first.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &K> {
        self.young.keys().chain(self.old.keys())
    }

    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        self.young.remove(key).or_else(|| self.old.remove(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_at_most_two_generations() {
        let mut r = Recent::new(2);
        for i in 0..5 {
            r.insert(i, i);
        }
        assert_eq!(r.get(&0), None);
        assert_eq!(r.get(&1), None);
        assert_eq!(r.get(&2), Some(&2));
        assert_eq!(r.get(&4), Some(&4));
    }

    #[test]
    fn reinsert_moves_a_key_to_the_young_generation() {
        let mut r = Recent::new(2);
        r.insert(1, 1);
        r.insert(2, 2);
        r.insert(1, 10);
        r.insert(3, 3);
        r.insert(4, 4);
        assert_eq!(r.get(&1), Some(&10));
        assert_eq!(r.remove(&1), Some(10));
        assert_eq!(r.get(&1), None);
    }
}
