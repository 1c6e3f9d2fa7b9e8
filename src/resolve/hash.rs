//! A fast, deterministic hasher for the search's small string-keyed maps
//! (the multiply-rotate scheme of the Fx hasher). Not for untrusted keys
//! at scale: package names from one snapshot are neither.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Multiply-rotate hasher.
#[derive(Debug, Default, Clone, Copy)]
pub struct FxHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(buf));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A `HashMap` with [`FxHasher`].
pub type FxHashMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_names_get_distinct_slots() {
        let mut m: FxHashMap<String, usize> = FxHashMap::default();
        for (i, n) in ["numpy", "numpy2", "pandas", "a", "b", "ab", "ba", ""]
            .iter()
            .enumerate()
        {
            m.insert((*n).to_string(), i);
        }
        assert_eq!(m.len(), 8);
        assert_eq!(m["pandas"], 2);
        assert_eq!(m[""], 7);
    }
}
