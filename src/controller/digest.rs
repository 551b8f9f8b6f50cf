//! The 64-bit digests kept in place of values that are only ever compared, never read back: what a listing
//! showed of each AWS resource ([`inventory`](super::inventory)) and which event an event repeats
//! ([`events`](super::events)). Keeping a digest instead of the strings and maps it stands for is what
//! keeps those per-resource and per-event records small at tens of thousands of objects.

use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::LazyLock;

/// The digest of `value`: SipHash with random keys drawn once per process. Nobody outside can choose a
/// changed value whose digest matches the unchanged one, and by chance two different values share a
/// digest about once in 2^64 comparisons. Both sides of every comparison are digested in this process, so
/// the keys never need to be the same anywhere else (nor survive a restart).
pub fn digest<T: Hash + ?Sized>(value: &T) -> u64 {
    static KEYS: LazyLock<RandomState> = LazyLock::new(RandomState::new);
    KEYS.hash_one(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_share_a_digest_and_different_ones_do_not() {
        assert_eq!(digest("room"), digest(&"room".to_owned()));
        assert_eq!(
            digest(&(Some("a"), None::<&str>)),
            digest(&(Some("a".to_owned()), None::<String>))
        );
        assert_ne!(digest("room"), digest("rooms"));
        assert_ne!(
            digest(&(Some("a"), None::<&str>)),
            digest(&(None::<&str>, Some("a")))
        );
    }
}
