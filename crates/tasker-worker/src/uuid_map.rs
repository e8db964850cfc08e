//! `UuidMap`: a `HashMap` keyed by the uuids this process generates (task uuids, event
//! ids), hashed by folding the uuid's bits instead of running SipHash over them.
//!
//! The keys are random (v4) uuids made here, so their bits are already uniform; SipHash's
//! protection against chosen keys buys nothing when no caller chooses a key that gets
//! inserted (a caller's uuid is only ever looked up). Hashing was a few percent of the
//! embedded `create_task` and of every poll and completion.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use uuid::Uuid;

/// A map from uuids made by this process to `V`.
pub type UuidMap<V> = HashMap<Uuid, V, BuildHasherDefault<UuidHasher>>;

/// Folds the bytes it is fed into 64 bits (a uuid: its two halves, xor-ed).
#[derive(Debug, Default, Clone, Copy)]
pub struct UuidHasher(u64);

impl Hasher for UuidHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            // Rotating before each fold keeps a key whose halves are equal from
            // hashing to zero, and mixes in the length prefix `Hash` may write.
            self.0 = self.0.rotate_left(29) ^ u64::from_le_bytes(word);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = self.0.rotate_left(29) ^ n;
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_uuids_spread_over_the_buckets_and_lookups_find_them() {
        let mut map: UuidMap<usize> = UuidMap::default();
        let keys: Vec<Uuid> = (0..10_000).map(|_| Uuid::new_v4()).collect();
        for (i, key) in keys.iter().enumerate() {
            map.insert(*key, i);
        }
        assert_eq!(map.len(), keys.len());
        assert!(keys.iter().enumerate().all(|(i, key)| map.get(key) == Some(&i)));
        assert_eq!(map.get(&Uuid::new_v4()), None);
        // The low bits pick a bucket: 10,000 random uuids must use nearly all of 1,024.
        let buckets: std::collections::HashSet<u64> = keys
            .iter()
            .map(|key| {
                let mut hasher = UuidHasher::default();
                std::hash::Hash::hash(key, &mut hasher);
                hasher.finish() & 1023
            })
            .collect();
        assert!(buckets.len() > 1000, "only {} of 1024 buckets used", buckets.len());
    }
}
