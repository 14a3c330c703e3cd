//! The set of live keys, kept beside usearch because its Rust binding cannot list them: the
//! brute-force scan walks this list, filter selectivity is estimated by sampling it, and a saved
//! index writes it out (see `persist.rs`).
//!
//! A dense `Vec` plus a position map gives O(1) insert, O(1) swap-remove and O(1) random access
//! for sampling, at ~24 bytes per key (a 384-d f32 vector is 1536).

use std::collections::HashMap;

#[derive(Default, Debug)]
pub(crate) struct KeySet {
    keys: Vec<u64>,
    pos: HashMap<u64, usize>,
}

impl KeySet {
    pub(crate) fn from_vec(keys: Vec<u64>) -> Option<Self> {
        let mut pos = HashMap::with_capacity(keys.len());
        for (i, &k) in keys.iter().enumerate() {
            if pos.insert(k, i).is_some() {
                return None; // duplicate: the file is not a key set
            }
        }
        Some(KeySet { keys, pos })
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn contains(&self, key: u64) -> bool {
        self.pos.contains_key(&key)
    }

    /// Returns false if the key was already present.
    pub(crate) fn insert(&mut self, key: u64) -> bool {
        if self.pos.contains_key(&key) {
            return false;
        }
        self.pos.insert(key, self.keys.len());
        self.keys.push(key);
        true
    }

    /// Returns false if the key was absent.
    pub(crate) fn remove(&mut self, key: u64) -> bool {
        let Some(i) = self.pos.remove(&key) else { return false };
        let last = self.keys.pop().expect("position map and list agree");
        if i < self.keys.len() {
            self.keys[i] = last;
            self.pos.insert(last, i);
        }
        true
    }

    pub(crate) fn as_slice(&self) -> &[u64] {
        &self.keys
    }

    pub(crate) fn reserve(&mut self, additional: usize) {
        self.keys.reserve(additional);
        self.pos.reserve(additional);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_remove_keeps_list_and_map_in_step() {
        let mut s = KeySet::default();
        for k in 0..100u64 {
            assert!(s.insert(k * 3));
        }
        assert!(!s.insert(3));
        for k in (0..100u64).filter(|k| k % 2 == 0) {
            assert!(s.remove(k * 3));
        }
        assert!(!s.remove(0));
        assert_eq!(s.len(), 50);
        for (i, &k) in s.as_slice().iter().enumerate() {
            assert_eq!(s.pos[&k], i);
            assert_eq!((k / 3) % 2, 1);
        }
        assert!(KeySet::from_vec(vec![1, 2, 1]).is_none());
        assert_eq!(KeySet::from_vec(vec![5, 7]).unwrap().len(), 2);
    }
}
