//! A regular file's bytes in two versions, what reads see and what survives
//! a power cut, with the pages where the two may differ.
//!
//! Tracking those pages keeps fsync and crash cheap on a big file: the
//! power-loss test's ext4 mode keeps a 96 MiB disk image here and flushes it
//! thousands of times (every jbd2 commit), so copying the whole file per
//! fsync (what this did first) would cost ~100 MiB of memcpy per flush.
//!
//! Invariant: a byte outside every dirty page is either past the end of both
//! versions or present in both with the same value. Every change of `data`
//! (a write, a size change) marks the pages it touched, so `sync` (copy the
//! dirty pages to `durable`) and `revert` (copy them back) restore equality.

use std::collections::BTreeSet;
use std::ops::Range;

/// The unit of dirty tracking: the kernel's page size, the loop driver's
/// and ext4's block size here.
const PAGE: usize = 4096;

/// Growing a file by more than this (truncate(2) of a disk image) makes a
/// new zeroed buffer instead of writing zeros: the allocator's fresh zeroed
/// mapping costs no memory until a page is written, so a 1 GiB image holds
/// only the pages ext4 wrote (twice: both versions).
const SPARSE_GROWTH: usize = 1 << 20;

/// `bytes` resized to `size`, new bytes zero.
fn grow(bytes: &mut Vec<u8>, size: usize) {
    if size > bytes.len() + SPARSE_GROWTH {
        let mut grown = vec![0; size];
        grown[..bytes.len()].copy_from_slice(bytes);
        *bytes = grown;
    } else {
        bytes.resize(size, 0);
    }
}

#[derive(Default)]
pub struct FileBody {
    /// What the kernel was told: what reads see.
    pub data: Vec<u8>,
    /// What the last fsync made durable: what a crash leaves.
    durable: Vec<u8>,
    /// Indexes of the pages written, or touched by a size change, since
    /// the last fsync or crash.
    dirty: BTreeSet<usize>,
}

impl FileBody {
    /// Bytes held in memory (both versions).
    pub fn stored(&self) -> u64 {
        (self.data.len() + self.durable.len()) as u64
    }

    fn mark(&mut self, bytes: Range<usize>) {
        if bytes.is_empty() {
            return;
        }
        self.dirty
            .extend(bytes.start / PAGE..=(bytes.end - 1) / PAGE);
    }

    /// truncate(2), O_TRUNC, or a write past the end: the bytes between the
    /// old and the new size change (cut off, or zeros appear).
    pub fn resize(&mut self, size: usize) {
        let old = self.data.len();
        self.mark(old.min(size)..old.max(size));
        grow(&mut self.data, size);
    }

    pub fn write(&mut self, offset: usize, buf: &[u8]) {
        let end = offset + buf.len();
        if self.data.len() < end {
            self.resize(end);
        }
        self.data[offset..end].copy_from_slice(buf);
        self.mark(offset..end);
    }

    /// The bytes of `page` within a file of `len` bytes.
    fn span(page: usize, len: usize) -> Range<usize> {
        (page * PAGE).min(len)..((page + 1) * PAGE).min(len)
    }

    /// Copies the bytes of `page` from `from` to `to` (the same length)
    /// unless they are equal already: comparing zeros with zeros (a grown
    /// image's untouched pages) reads the shared zero page and allocates
    /// nothing.
    fn copy_page(page: usize, from: &[u8], to: &mut [u8]) {
        let span = Self::span(page, from.len());
        if from[span.clone()] != to[span.clone()] {
            to[span.clone()].copy_from_slice(&from[span]);
        }
    }

    /// fsync: the size and the dirty pages become durable.
    pub fn sync(&mut self) {
        grow(&mut self.durable, self.data.len());
        for page in std::mem::take(&mut self.dirty) {
            Self::copy_page(page, &self.data, &mut self.durable);
        }
    }

    /// The dirty pages whose bytes differ from their durable version.
    fn changed_pages(&self) -> usize {
        let len = self.data.len().min(self.durable.len());
        self.dirty
            .iter()
            .filter(|&&page| {
                let span = Self::span(page, len);
                self.data[span.clone()] != self.durable[span]
            })
            .count()
    }

    /// Whether a crash now would change what reads see.
    pub fn differs(&self) -> bool {
        self.data.len() != self.durable.len() || self.changed_pages() > 0
    }

    /// The power cut: back to the durable size and bytes. Returns the
    /// `lost_bytes` figure (the size difference, at least 1 when anything
    /// differed: the figure lossyfs always reported) and the number of pages
    /// within both sizes whose unflushed bytes were lost (the figure that
    /// says something for a disk image, whose size never changes).
    pub fn revert(&mut self) -> (u64, u64) {
        let pages = self.changed_pages() as u64;
        let lost = if self.differs() {
            self.data.len().abs_diff(self.durable.len()).max(1) as u64
        } else {
            0
        };
        grow(&mut self.data, self.durable.len());
        for page in std::mem::take(&mut self.dirty) {
            Self::copy_page(page, &self.durable, &mut self.data);
        }
        (lost, pages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_and_revert_follow_the_last_fsync() {
        let mut f = FileBody::default();
        f.write(0, &[1; 10_000]);
        f.sync();
        f.write(5000, &[2; 100]);
        f.resize(3000);
        f.resize(12_000);
        assert!(f.differs());
        assert_eq!(f.revert(), (2000, 3));
        assert_eq!(f.data, vec![1; 10_000]);
        f.resize(4097);
        f.sync();
        f.write(20_000, b"x");
        f.revert();
        assert_eq!(f.data, vec![1; 4097]);
        assert!(!f.differs());
        f.resize(3 << 20);
        f.write(4097, b"y");
        f.sync();
        assert_eq!(f.data.len(), 3 << 20);
        assert_eq!(f.data[..4097], vec![1; 4097]);
        assert_eq!(&f.data[4097..4099], b"y\0");
        f.resize(0);
        assert_eq!(f.revert(), (3 << 20, 0));
        assert_eq!(f.data.len(), 3 << 20);
    }
}
