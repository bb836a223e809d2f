//! Fixed-width bitsets of model and provider ids. They are `Copy`, so the
//! decision path combines them without allocating.

use super::{ModelId, ProviderId};

/// A set of models, one bit per [`ModelId`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModelSet(u128);

impl ModelSet {
    pub const fn empty() -> Self {
        ModelSet(0)
    }

    /// The set of the first `count` models; `count` is at most 128.
    pub const fn first(count: usize) -> Self {
        if count >= 128 {
            ModelSet(u128::MAX)
        } else {
            ModelSet((1u128 << count) - 1)
        }
    }

    pub fn insert(&mut self, id: ModelId) {
        self.0 |= 1u128 << id.0;
    }

    pub fn remove(&mut self, id: ModelId) {
        self.0 &= !(1u128 << id.0);
    }

    pub const fn contains(self, id: ModelId) -> bool {
        self.0 & (1u128 << id.0) != 0
    }

    pub const fn intersect(self, other: ModelSet) -> ModelSet {
        ModelSet(self.0 & other.0)
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The ids in the set, lowest first.
    pub fn iter(self) -> impl Iterator<Item = ModelId> {
        let mut bits = self.0;
        std::iter::from_fn(move || {
            if bits == 0 {
                return None;
            }
            let id = bits.trailing_zeros() as u8;
            bits &= bits - 1;
            Some(ModelId(id))
        })
    }
}

/// A set of providers, one bit per [`ProviderId`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProviderSet(u64);

impl ProviderSet {
    pub const ALL: ProviderSet = ProviderSet(u64::MAX);

    pub const fn empty() -> Self {
        ProviderSet(0)
    }

    pub fn insert(&mut self, id: ProviderId) {
        self.0 |= 1u64 << id.0;
    }

    pub const fn contains(self, id: ProviderId) -> bool {
        self.0 & (1u64 << id.0) != 0
    }

    pub const fn intersect(self, other: ProviderSet) -> ProviderSet {
        ProviderSet(self.0 & other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_set_iterates_in_order() {
        let mut set = ModelSet::empty();
        for id in [127, 3, 64, 0] {
            set.insert(ModelId(id));
        }
        let ids: Vec<u8> = set.iter().map(|id| id.0).collect();
        assert_eq!(ids, vec![0, 3, 64, 127]);
        assert_eq!(set.len(), 4);
    }

    #[test]
    fn model_set_first_covers_exactly_count() {
        assert_eq!(ModelSet::first(0), ModelSet::empty());
        assert_eq!(ModelSet::first(3).len(), 3);
        assert!(!ModelSet::first(3).contains(ModelId(3)));
        assert_eq!(ModelSet::first(128).len(), 128);
    }

    #[test]
    fn model_set_remove_and_intersect() {
        let mut set = ModelSet::first(4);
        set.remove(ModelId(1));
        let mut other = ModelSet::empty();
        other.insert(ModelId(1));
        other.insert(ModelId(2));
        assert_eq!(
            set.intersect(other).iter().collect::<Vec<_>>(),
            vec![ModelId(2)]
        );
    }

    #[test]
    fn provider_set_all_contains_every_id() {
        assert!(ProviderSet::ALL.contains(ProviderId(63)));
        assert!(!ProviderSet::empty().contains(ProviderId(0)));
    }
}
