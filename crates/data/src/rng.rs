//! Seeded random streams. Every random choice in this crate comes from a ChaCha8 generator
//! keyed by exactly what the choice is about (purpose, seed, and up to two indices), so a
//! choice never depends on the order work is done in, on batch composition or on the number
//! of threads, and a resumed run makes the same choices again.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What a stream is for. It is part of the key, so streams for different purposes never
/// coincide even when their seeds and indices do.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Purpose {
    Subset = 1,
    EpochOrder = 2,
    Augmentation = 3,
    SyntheticTemplate = 4,
    SyntheticImage = 5,
}

/// The generator for `purpose` with `seed` and indices `a`, `b`.
///
/// The four words are the ChaCha key itself: ChaCha is a pseudo-random function of its key, so
/// distinct keys give independent streams without any hashing.
pub(crate) fn stream(purpose: Purpose, seed: u64, a: u64, b: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    for (chunk, word) in key.chunks_exact_mut(8).zip([purpose as u64, seed, a, b]) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    ChaCha8Rng::from_seed(key)
}

/// A uniformly random permutation of `0..n`.
pub(crate) fn permutation(n: usize, rng: &mut impl Rng) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(rng);
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;

    #[test]
    fn streams_differ_by_every_key_part() {
        let draw = |p, s, a, b| stream(p, s, a, b).random::<u64>();
        let base = draw(Purpose::Subset, 1, 2, 3);
        assert_eq!(base, draw(Purpose::Subset, 1, 2, 3));
        for other in [
            draw(Purpose::EpochOrder, 1, 2, 3),
            draw(Purpose::Subset, 9, 2, 3),
            draw(Purpose::Subset, 1, 9, 3),
            draw(Purpose::Subset, 1, 2, 9),
        ] {
            assert_ne!(base, other);
        }
    }
}
