//! The records held in memory: the newest, within a count and a byte cap, in id order.
//!
//! Owns: assigning ids and dropping the oldest records past the bounds. Must not: lock, publish
//! or write anything (the store around it does).

use std::collections::VecDeque;
use std::sync::Arc;

use super::RunRecord;

pub(super) struct Ring {
    /// Oldest first; ids increase by one.
    records: VecDeque<(Arc<RunRecord>, usize)>,
    bytes: usize,
    max_records: usize,
    max_bytes: usize,
    next_id: u64,
}

impl Ring {
    pub fn new(max_records: usize, max_bytes: usize) -> Ring {
        Ring {
            records: VecDeque::new(),
            bytes: 0,
            max_records,
            max_bytes,
            next_id: 1,
        }
    }

    /// Give `record` the next id and keep it; returns it and how many old records went.
    pub fn add(&mut self, mut record: RunRecord) -> (Arc<RunRecord>, usize) {
        record.id = self.next_id;
        let record = Arc::new(record);
        let dropped = self.push(record.clone());
        (record, dropped)
    }

    /// Keep a record that has its id (loaded from disk, in id order); how many old ones went.
    pub fn push(&mut self, record: Arc<RunRecord>) -> usize {
        let size = record.approx_bytes();
        self.next_id = self.next_id.max(record.id + 1);
        self.records.push_back((record, size));
        self.bytes += size;
        let mut dropped = 0;
        // The newest record stays even if it alone is over the byte cap.
        while self.records.len() > 1
            && (self.records.len() > self.max_records || self.bytes > self.max_bytes)
        {
            if let Some((_, size)) = self.records.pop_front() {
                self.bytes -= size;
                dropped += 1;
            }
        }
        dropped
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The id the next record gets (1 for an empty, new store).
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    pub fn oldest_id(&self) -> Option<u64> {
        self.records.front().map(|(r, _)| r.id)
    }

    pub fn get(&self, id: u64) -> Option<Arc<RunRecord>> {
        let i = self.records.binary_search_by_key(&id, |(r, _)| r.id).ok()?;
        Some(self.records[i].0.clone())
    }

    /// The records with an id above `id`, oldest first.
    pub fn after(&self, id: u64) -> Vec<Arc<RunRecord>> {
        let from = self.records.partition_point(|(r, _)| r.id <= id);
        self.records.range(from..).map(|(r, _)| r.clone()).collect()
    }

    /// The records with an id below `before` (all without it), oldest first.
    pub fn snapshot(&self, before: Option<u64>) -> Vec<Arc<RunRecord>> {
        let to = match before {
            Some(b) => self.records.partition_point(|(r, _)| r.id < b),
            None => self.records.len(),
        };
        self.records.range(..to).map(|(r, _)| r.clone()).collect()
    }
}
