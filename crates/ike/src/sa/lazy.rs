//! State an IKE SA needs only once it is used (replay memory, IPsec SA lifetimes), allocated
//! on the first write: a half-open SA, which never writes it, holds a pointer instead of the
//! state (`engine::half_open` charges what a half-open SA really holds).

use std::ops::{Deref, DerefMut};

/// A state with a shared empty value, read while nothing was written.
pub(crate) trait Empty: Default + 'static {
    /// The state before the first write.
    const EMPTY: &'static Self;
}

/// `T`, boxed on the first write; reads before it see [`Empty::EMPTY`].
#[derive(Debug, Default)]
pub(crate) struct Lazy<T: Empty>(Option<Box<T>>);

impl<T: Empty> Deref for Lazy<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.0.as_deref().unwrap_or(T::EMPTY)
    }
}

impl<T: Empty> DerefMut for Lazy<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.0.get_or_insert_with(Box::default)
    }
}

#[cfg(test)]
mod tests {
    use super::Lazy;
    use crate::sa::seen::SeenMessageIds;

    #[test]
    fn reads_allocate_nothing_and_the_first_write_does() {
        let mut seen = Lazy::<SeenMessageIds>::default();
        assert!(!seen.contains(7) && seen.forgotten == 0);
        assert!(seen.0.is_none(), "a read leaves it empty");
        assert!(seen.first_time(7));
        assert!(seen.0.is_some() && seen.contains(7));
    }
}
