//! A FIFO queue in fixed-size blocks.
//!
//! Why not a `VecDeque`: the queues that hold calls at full rate (the reorder window, the
//! drain's per-CPU queues) swing between empty and a hundred thousand calls many times a
//! second. A `VecDeque` grows by doubling into a new buffer, so at its peak it holds the old
//! buffer, the new one, and up to half of the new one unused: about 2.5 times what it holds,
//! kept for the rest of the capture. Heaptrack put two thirds of the recorder's heap there
//! on the getppid loop. Blocks are allocated one at a time and freed when emptied, so the
//! queue holds what it holds, rounded up to a block.
use std::{collections::VecDeque, vec};

/// Values per block. For calls (128 bytes), 64 KiB a block.
const BLOCK: usize = 512;

pub struct BlockQueue<T> {
    /// The oldest block, being taken from: an owning iterator takes from its front by a
    /// pointer bump, as a `VecDeque` would.
    front: vec::IntoIter<T>,
    /// The blocks after it, oldest first, each full but the last.
    rest: VecDeque<Vec<T>>,
    len: usize,
}

impl<T> Default for BlockQueue<T> {
    fn default() -> Self {
        Self {
            front: Vec::new().into_iter(),
            rest: VecDeque::new(),
            len: 0,
        }
    }
}

impl<T> BlockQueue<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Inlined into the writer's loop: out of line, a call was copied twice more on its
    /// way into the block (BENCHMARKS.md).
    #[inline(always)]
    pub fn push_back(&mut self, value: T) {
        match self.rest.back_mut() {
            Some(block) if block.len() < BLOCK => block.push(value),
            _ => {
                let mut block = Vec::with_capacity(BLOCK);
                block.push(value);
                self.rest.push_back(block);
            }
        }
        self.len += 1;
    }

    pub fn front(&self) -> Option<&T> {
        self.front
            .as_slice()
            .first()
            .or_else(|| self.rest.front().and_then(|b| b.first()))
    }

    pub fn back(&self) -> Option<&T> {
        self.rest
            .back()
            .and_then(|b| b.last())
            .or_else(|| self.front.as_slice().last())
    }

    pub fn get(&self, index: usize) -> Option<&T> {
        let front = self.front.as_slice();
        match index.checked_sub(front.len()) {
            None => front.get(index),
            // Every block after the front one is full but the last.
            Some(i) => self.rest.get(i / BLOCK)?.get(i % BLOCK),
        }
    }

    #[inline]
    pub fn pop_front(&mut self) -> Option<T> {
        loop {
            if let Some(value) = self.front.next() {
                self.len -= 1;
                return Some(value);
            }
            self.front = self.rest.pop_front()?.into_iter();
        }
    }

    /// The values at the front that lie together in one block, in place: up to a block.
    pub fn front_slice(&mut self) -> &[T] {
        if self.front.as_slice().is_empty()
            && let Some(block) = self.rest.pop_front()
        {
            self.front = block.into_iter();
        }
        self.front.as_slice()
    }

    /// Drops the first `n` values of [`Self::front_slice`] where they lie.
    pub fn drop_front(&mut self, n: usize) {
        assert!(n <= self.front.len(), "only the front block's values");
        if n > 0 {
            // A vector's iterator skips by dropping the values in place, not by moving them.
            self.front.nth(n - 1);
            self.len -= n;
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.front
            .as_slice()
            .iter()
            .chain(self.rest.iter().flatten())
    }

    /// How many values from the front satisfy `pred`, for a queue partitioned by it (every
    /// value that satisfies it comes before every one that does not).
    pub fn partition_point(&self, mut pred: impl FnMut(&T) -> bool) -> usize {
        let mut count = 0;
        let blocks = std::iter::once(self.front.as_slice()).chain(self.rest.iter().map(|b| &b[..]));
        for block in blocks {
            match block.last() {
                // The front block, taken to its end.
                None => {}
                Some(last) if pred(last) => count += block.len(),
                Some(_) => return count + block.partition_point(&mut pred),
            }
        }
        count
    }

    /// Removes the first `n` values as they are yielded. Values not yet yielded when the
    /// iterator is dropped stay in the queue.
    pub fn drain_front(&mut self, n: usize) -> DrainFront<'_, T> {
        DrainFront {
            left: n.min(self.len),
            queue: self,
        }
    }
}

pub struct DrainFront<'a, T> {
    queue: &'a mut BlockQueue<T>,
    left: usize,
}

impl<T> DrainFront<'_, T> {
    /// Whether every value it was to yield has gone.
    pub fn is_empty(&self) -> bool {
        self.left == 0
    }

    /// The value `next` would yield, in place.
    pub fn peek(&self) -> Option<&T> {
        if self.left == 0 {
            None
        } else {
            self.queue.front()
        }
    }

    /// The next values to be yielded that lie together in one block, in place.
    pub fn front_run(&mut self) -> &[T] {
        let left = self.left;
        let run = self.queue.front_slice();
        &run[..run.len().min(left)]
    }

    /// Removes the first `n` values of [`Self::front_run`] without yielding them.
    pub fn skip_run(&mut self, n: usize) {
        assert!(n <= self.left, "only values the drain holds");
        self.queue.drop_front(n);
        self.left -= n;
    }
}

impl<T> Iterator for DrainFront<'_, T> {
    type Item = T;

    #[inline]
    fn next(&mut self) -> Option<T> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        self.queue.pop_front()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_across_blocks() {
        let mut q = BlockQueue::default();
        let n = 3 * BLOCK + 7;
        for i in 0..n {
            q.push_back(i);
        }
        assert_eq!(q.len(), n);
        assert_eq!(q.front(), Some(&0));
        assert_eq!(q.back(), Some(&(n - 1)));
        assert_eq!(q.partition_point(|&v| v < BLOCK + 3), BLOCK + 3);
        assert_eq!(q.partition_point(|&v| v < 2 * BLOCK), 2 * BLOCK);
        assert_eq!(q.partition_point(|_| true), n);
        assert_eq!(q.partition_point(|_| false), 0);
        assert_eq!(q.get(BLOCK + 3), Some(&(BLOCK + 3)));
        assert_eq!(q.get(n), None);
        let first: Vec<usize> = q.drain_front(BLOCK + 1).collect();
        assert_eq!(first, (0..=BLOCK).collect::<Vec<_>>());
        assert_eq!(q.len(), n - BLOCK - 1);
        assert!(q.iter().copied().eq(BLOCK + 1..n));
        assert_eq!(q.get(0), Some(&(BLOCK + 1)));
        assert_eq!(q.get(BLOCK), Some(&(2 * BLOCK + 1)));
        assert_eq!(q.get(n - BLOCK - 2), Some(&(n - 1)));
        // A drain stopped early leaves the rest.
        assert_eq!(q.drain_front(10).next(), Some(BLOCK + 1));
        assert_eq!(q.len(), n - BLOCK - 2);
        let rest: Vec<usize> = q.drain_front(usize::MAX).collect();
        assert_eq!(rest, (BLOCK + 2..n).collect::<Vec<_>>());
        assert!(q.is_empty());
        assert_eq!(q.pop_front(), None);
    }

    #[test]
    fn runs_are_taken_in_place_a_block_at_a_time() {
        let mut q = BlockQueue::default();
        let n = 2 * BLOCK + 5;
        for i in 0..n {
            q.push_back(i);
        }
        let mut drain = q.drain_front(BLOCK + 10);
        assert_eq!(drain.front_run().len(), BLOCK);
        assert_eq!(drain.front_run()[3], 3);
        drain.skip_run(BLOCK - 2);
        assert_eq!(drain.front_run(), &[BLOCK - 2, BLOCK - 1]);
        assert_eq!(drain.next(), Some(BLOCK - 2));
        drain.skip_run(1);
        // The next block, cut at what the drain holds.
        assert_eq!(drain.front_run(), (BLOCK..BLOCK + 10).collect::<Vec<_>>());
        drain.skip_run(4);
        assert_eq!(
            drain.collect::<Vec<_>>(),
            (BLOCK + 4..BLOCK + 10).collect::<Vec<_>>()
        );
        assert_eq!(q.len(), n - BLOCK - 10);
        assert_eq!(q.front(), Some(&(BLOCK + 10)));
        assert!(q.iter().copied().eq(BLOCK + 10..n));
    }
}
