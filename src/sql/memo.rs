//! A bounded, process-wide memo of pure decodings (a catalog entry's bytes to its `TableInfo`,
//! a type's text to its `SqlType`): keys are the whole input, so an entry is never stale; when
//! full it is emptied rather than tracked, as the inputs in use are few.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::OnceLock;

use parking_lot::RwLock;

pub struct Memo<K, V> {
    map: OnceLock<RwLock<HashMap<K, V>>>,
    capacity: usize,
}

impl<K: Hash + Eq, V: Clone> Memo<K, V> {
    pub const fn new(capacity: usize) -> Self {
        Memo { map: OnceLock::new(), capacity }
    }

    /// The value for `key`, computed by `make` (and remembered) the first time.
    pub fn get_or_try<Q, E>(&self, key: &Q, make: impl FnOnce() -> Result<V, E>) -> Result<V, E>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let map = self.map.get_or_init(Default::default);
        if let Some(v) = map.read().get(key) {
            return Ok(v.clone());
        }
        let v = make()?;
        let mut w = map.write();
        if w.len() >= self.capacity {
            w.clear();
        }
        w.insert(key.to_owned(), v.clone());
        Ok(v)
    }
}
