//! Interns officer and device ids so a catalog entry holds 4-byte numbers, not strings.
//!
//! Invariant: `names[i]` is the string of number `i`; numbers never change while the catalog
//! lives and are persisted in checkpoint order.

use std::collections::HashMap;

#[derive(Debug, Default)]
pub struct Interner {
    names: Vec<Box<str>>,
    map: HashMap<Box<str>, u32>,
}

impl Interner {
    pub fn intern(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.map.get(s) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(s.into());
        self.map.insert(s.into(), i);
        i
    }

    pub fn lookup(&self, s: &str) -> Option<u32> {
        self.map.get(s).copied()
    }

    pub fn name(&self, i: u32) -> &str {
        self.names.get(i as usize).map(|b| &**b).unwrap_or("")
    }

    pub fn names(&self) -> &[Box<str>] {
        &self.names
    }

    pub fn heap_bytes(&self) -> usize {
        self.names.iter().map(|n| 2 * n.len() + 48).sum()
    }
}
