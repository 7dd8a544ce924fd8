//! The two shapes the world's big pieces take, so that a save copies and writes only what changed.
//!
//! - [`Part`]: a value behind an `Arc`, copied on write. A save takes the parts that changed (a
//!   pointer copy each, under the world's lock) and serializes them after letting go of the lock; a
//!   request that changes a part in the meantime changes a copy.
//! - [`Log`]: an append-only sequence that forgets from the front (the journal, an org's events), in
//!   chunks that are shared the same way. A save takes only the items appended since the last one.
//!
//! Both serialize as the value they hold (a `Log` as a sequence), so the admin API's view of the world
//! and a state file of format 1 see plain data.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

/// A value that saves share without copying. Reading it is reading the value; borrowing it mutably
/// marks it changed (and copies it first when a save still holds it).
#[derive(Debug)]
pub struct Part<T> {
    value: Arc<T>,
    changed: bool,
}

impl<T> Part<T> {
    pub fn new(value: T) -> Part<T> {
        Part {
            value: Arc::new(value),
            changed: true,
        }
    }

    /// The value as it is now, when it changed since the last call (which forgets the change).
    pub fn take_changed(&mut self) -> Option<Arc<T>> {
        std::mem::take(&mut self.changed).then(|| self.value.clone())
    }

    /// The value as it is now, changed or not, forgetting any change (a save that writes everything).
    pub fn take(&mut self) -> Arc<T> {
        self.changed = false;
        self.value.clone()
    }

    /// The value, to update a save's own bookkeeping inside it (what its logs have written, what its
    /// parts have): not a change to the value, so it is not marked changed.
    pub fn bookkeeping(&mut self) -> &mut T
    where
        T: Clone,
    {
        Arc::make_mut(&mut self.value)
    }

    /// Records that what the value holds now is saved (after a load).
    pub fn mark_saved(&mut self) {
        self.changed = false;
    }

    /// Whether it changed since it was last saved.
    pub fn is_changed(&self) -> bool {
        self.changed
    }
}

impl<T: Default> Default for Part<T> {
    fn default() -> Self {
        Part::new(T::default())
    }
}

impl<T: Clone> Clone for Part<T> {
    fn clone(&self) -> Self {
        Part {
            value: self.value.clone(),
            changed: self.changed,
        }
    }
}

impl<T> Deref for Part<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: Clone> DerefMut for Part<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.changed = true;
        Arc::make_mut(&mut self.value)
    }
}

impl<'a, T> IntoIterator for &'a Part<T>
where
    &'a T: IntoIterator,
{
    type Item = <&'a T as IntoIterator>::Item;
    type IntoIter = <&'a T as IntoIterator>::IntoIter;
    fn into_iter(self) -> Self::IntoIter {
        (&*self.value).into_iter()
    }
}

impl<T: Serialize> Serialize for Part<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(s)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Part<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(Part::new)
    }
}

/// Items per chunk of a [`Log`]: what a request that appends after a save copies at most.
pub const CHUNK: usize = 1024;

/// An append-only sequence that forgets from the front. Every item has an absolute index (its
/// position counted from the first item ever appended), so a save knows what it has written.
#[derive(Debug)]
pub struct Log<T> {
    /// Every chunk but the last holds `CHUNK` items; the first has `skip` of them forgotten.
    chunks: VecDeque<Arc<Vec<T>>>,
    skip: usize,
    len: usize,
    /// The absolute index of the first item kept.
    start: u64,
    /// Items before this absolute index are in the state file.
    saved: u64,
}

impl<T> Default for Log<T> {
    fn default() -> Self {
        Log {
            chunks: VecDeque::new(),
            skip: 0,
            len: 0,
            start: 0,
            saved: 0,
        }
    }
}

impl<T: Clone> Clone for Log<T> {
    fn clone(&self) -> Self {
        Log {
            chunks: self.chunks.clone(),
            skip: self.skip,
            len: self.len,
            start: self.start,
            saved: self.saved,
        }
    }
}

/// The items of a log from one absolute index on, sharing its chunks: cheap to take under a lock.
#[derive(Debug)]
pub struct Tail<T> {
    chunks: Vec<Arc<Vec<T>>>,
    skip: usize,
    len: usize,
    /// The absolute index of the first item.
    pub start: u64,
}

impl<T> Tail<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks
            .iter()
            .flat_map(|c| c.iter())
            .skip(self.skip)
            .take(self.len)
    }
}

impl<T> Log<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The absolute index of the first item kept (how many were ever forgotten).
    pub fn start(&self) -> u64 {
        self.start
    }

    /// The absolute index the next item will have.
    pub fn end(&self) -> u64 {
        self.start + self.len as u64
    }

    pub fn get(&self, i: usize) -> Option<&T> {
        if i >= self.len {
            return None;
        }
        let j = i + self.skip;
        self.chunks.get(j / CHUNK).and_then(|c| c.get(j % CHUNK))
    }

    pub fn front(&self) -> Option<&T> {
        self.get(0)
    }

    pub fn back(&self) -> Option<&T> {
        self.len.checked_sub(1).and_then(|i| self.get(i))
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + '_ {
        (0..self.len).filter_map(|i| self.get(i))
    }

    /// The items from position `from` (counted from the first kept) on.
    pub fn range_from(&self, from: usize) -> impl Iterator<Item = &T> + '_ {
        (from.min(self.len)..self.len).filter_map(|i| self.get(i))
    }

    /// The number of leading items for which `pred` holds (the log must be partitioned by it).
    pub fn partition_point(&self, mut pred: impl FnMut(&T) -> bool) -> usize {
        let (mut lo, mut hi) = (0, self.len);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.get(mid) {
                Some(x) if pred(x) => lo = mid + 1,
                _ => hi = mid,
            }
        }
        lo
    }

    pub fn pop_front(&mut self) -> bool {
        if self.len == 0 {
            return false;
        }
        self.skip += 1;
        self.len -= 1;
        self.start += 1;
        if self.chunks.front().is_some_and(|c| self.skip >= c.len()) {
            self.chunks.pop_front();
            self.skip = 0;
        }
        true
    }

    /// Forgets every item.
    pub fn clear(&mut self) {
        self.start = self.end();
        self.chunks.clear();
        self.skip = 0;
        self.len = 0;
    }

    /// The items not yet saved, and from now on counts them as saved.
    pub fn take_unsaved(&mut self) -> Tail<T> {
        let from = self.saved.max(self.start);
        self.saved = self.end();
        self.tail(from)
    }

    /// Items before this absolute index are saved.
    pub fn saved(&self) -> u64 {
        self.saved
    }

    /// Counts every item (and every one forgotten) as saved (after a load).
    pub fn mark_saved(&mut self) {
        self.saved = self.end();
    }

    /// Counts every item as unsaved, so that the next save writes them all.
    pub fn mark_unsaved(&mut self) {
        self.saved = self.start;
    }

    /// The items from absolute index `from` (at least the first kept) on.
    pub fn tail(&self, from: u64) -> Tail<T> {
        let from = from.clamp(self.start, self.end());
        let first = (from - self.start) as usize + self.skip;
        Tail {
            chunks: self.chunks.iter().skip(first / CHUNK).cloned().collect(),
            skip: first % CHUNK,
            len: (self.end() - from) as usize,
            start: from,
        }
    }

    /// A log whose first item has absolute index `start`.
    pub fn starting_at(start: u64) -> Log<T> {
        Log {
            start,
            saved: start,
            ..Log::default()
        }
    }
}

impl<T: Clone> Log<T> {
    pub fn push_back(&mut self, item: T) {
        if self.chunks.back().is_none_or(|c| c.len() >= CHUNK) {
            self.chunks.push_back(Arc::new(Vec::with_capacity(CHUNK)));
        }
        let last = self.chunks.back_mut().expect("a chunk was just made");
        Arc::make_mut(last).push(item);
        self.len += 1;
    }
}

impl<T: Clone> Extend<T> for Log<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, items: I) {
        for item in items {
            self.push_back(item);
        }
    }
}

impl<T: Clone> FromIterator<T> for Log<T> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Self {
        let mut log = Log::default();
        log.extend(items);
        log
    }
}

impl<T: Serialize> Serialize for Log<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de, T: Deserialize<'de> + Clone> Deserialize<'de> for Log<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<T>::deserialize(d).map(|v| v.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_keeps_order_and_absolute_indexes_as_it_forgets() {
        let mut log: Log<u64> = (0..3000).collect();
        assert_eq!((log.len(), log.start(), log.end()), (3000, 0, 3000));
        for _ in 0..1500 {
            assert!(log.pop_front());
        }
        assert_eq!(log.front(), Some(&1500));
        assert_eq!(log.back(), Some(&2999));
        assert_eq!(log.get(600), Some(&2100));
        assert_eq!(
            log.iter().copied().collect::<Vec<_>>(),
            (1500..3000).collect::<Vec<_>>()
        );
        assert_eq!(log.partition_point(|x| *x < 2500), 1000);
        assert_eq!(
            log.range_from(1499).copied().collect::<Vec<_>>(),
            vec![2999]
        );
        log.extend(3000..3100);
        assert_eq!(log.iter().next_back(), Some(&3099));
        let tail = log.tail(2990);
        assert_eq!(tail.start, 2990);
        assert_eq!(
            tail.iter().copied().collect::<Vec<_>>(),
            (2990..3100).collect::<Vec<_>>()
        );
        log.clear();
        assert!(log.is_empty() && log.start() == 3100 && log.front().is_none());
        log.push_back(7);
        assert_eq!(
            (log.start(), log.end(), log.front()),
            (3100, 3101, Some(&7))
        );
    }

    #[test]
    fn a_save_takes_only_what_was_appended_since_the_last_one() {
        let mut log: Log<u32> = Log::default();
        log.extend(0..10);
        assert_eq!(log.take_unsaved().len(), 10);
        log.extend(10..15);
        let t = log.take_unsaved();
        assert_eq!(
            (t.start, t.iter().copied().collect::<Vec<_>>()),
            (10, (10..15).collect())
        );
        assert!(log.take_unsaved().is_empty());
        // What is forgotten before it was saved is never asked for.
        log.extend(15..20);
        for _ in 0..17 {
            log.pop_front();
        }
        let t = log.take_unsaved();
        assert_eq!(
            (t.start, t.iter().copied().collect::<Vec<_>>()),
            (17, vec![17, 18, 19])
        );
    }

    #[test]
    fn a_part_held_by_a_save_is_copied_on_write_and_marked_changed() {
        let mut p = Part::new(vec![1, 2, 3]);
        let held = p.take_changed().expect("new parts are unsaved");
        assert!(p.take_changed().is_none(), "reading does not change it");
        let _ = p.len();
        assert!(!p.is_changed());
        p.push(4);
        assert_eq!(*held, vec![1, 2, 3], "the save's copy is untouched");
        assert_eq!(*p.take_changed().expect("changed"), vec![1, 2, 3, 4]);
    }

    #[test]
    fn a_chunk_held_by_a_save_is_copied_on_append() {
        let mut log: Log<u8> = Log::default();
        log.extend([1, 2]);
        let held = log.take_unsaved();
        log.push_back(3);
        assert_eq!(held.iter().copied().collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(log.iter().copied().collect::<Vec<_>>(), vec![1, 2, 3]);
    }
}
