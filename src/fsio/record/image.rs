//! The crash model applied: a [`Recording`] read back (its marks and sync sites) and turned
//! into the directory a power cut after any event could leave (`image`, the rules in the
//! parent module's header).
//!
//! Invariants: an image keeps everything durable before the cut; with a seed, the same seed
//! gives the same image; `image` never touches the recorded directory.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};

use super::{Event, Recording, SECTOR};

#[derive(Clone, Copy)]
enum Node {
    Dir,
    File(u64),
}

fn parent(p: &Path) -> PathBuf {
    p.parent().map(Path::to_path_buf).unwrap_or_default()
}

impl Recording {
    /// Positions of the marks: `(index of the Mark event, label)`. A cut at the index keeps
    /// every event before the mark, all of which preceded the acknowledgement.
    pub fn marks(&self) -> Vec<(usize, &str)> {
        self.events
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match e {
                Event::Mark(l) => Some((i, l.as_str())),
                _ => None,
            })
            .collect()
    }

    /// The sync sites that made something durable in this recording, in first-seen order.
    pub fn sync_sites(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for e in &self.events {
            if let Event::Sync { site, .. } | Event::SyncDir { site, .. } = e {
                if !out.contains(site) {
                    out.push(site);
                }
            }
        }
        out
    }

    /// Writes to `dst` (which must not exist) the directory a power cut after the first
    /// `cut` events could leave: what was durable then, plus, with a `seed`, a random subset
    /// of what was not (see the module header). The same seed gives the same image.
    pub fn image(&self, cut: usize, seed: Option<u64>, dst: &Path) -> io::Result<()> {
        let events = self.events.get(..cut).unwrap_or(&self.events);
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed.unwrap_or(0));
        // The last sync of each file and directory before the cut.
        let mut file_synced: HashMap<u64, usize> = HashMap::new();
        let mut dir_synced: HashMap<PathBuf, usize> = HashMap::new();
        for (i, e) in events.iter().enumerate() {
            match e {
                Event::Sync { file, .. } => {
                    file_synced.insert(*file, i);
                }
                Event::SyncDir { path, .. } => {
                    dir_synced.insert(path.clone(), i);
                }
                _ => {}
            }
        }
        let dir_durable = |d: &Path, i: usize| dir_synced.get(d).is_some_and(|&s| s > i);

        // Directory entries: per directory, the durable prefix plus a random prefix of the rest.
        let mut per_dir: BTreeMap<PathBuf, (usize, usize)> = BTreeMap::new(); // (ops, durable)
        let mut op_dir: Vec<Option<(PathBuf, usize)>> = vec![None; events.len()];
        for (i, e) in events.iter().enumerate() {
            let (d, durable) = match e {
                Event::Create { path, .. } | Event::Mkdir { path } | Event::Unlink { path } => {
                    let d = parent(path);
                    let durable = dir_durable(&d, i);
                    (d, durable)
                }
                Event::Rename { from, to, .. } => {
                    let d = parent(to);
                    let durable = dir_durable(&d, i) && dir_durable(&parent(from), i);
                    (d, durable)
                }
                _ => continue,
            };
            let slot = per_dir.entry(d.clone()).or_default();
            op_dir[i] = Some((d, slot.0));
            slot.0 += 1;
            if durable {
                slot.1 = slot.0;
            }
        }
        let mut keep_dir: HashMap<PathBuf, usize> = HashMap::new();
        for (d, (ops, durable)) in per_dir {
            let extra = match seed {
                Some(_) => rng.random_range(0..=ops - durable),
                None => 0,
            };
            keep_dir.insert(d, durable + extra);
        }
        let mut names: BTreeMap<PathBuf, Node> = BTreeMap::new();
        for d in &self.dirs {
            names.insert(d.clone(), Node::Dir);
        }
        for (p, id, _) in &self.files {
            names.insert(p.clone(), Node::File(*id));
        }
        for (i, e) in events.iter().enumerate() {
            let Some((d, k)) = &op_dir[i] else { continue };
            if *k >= keep_dir.get(d).copied().unwrap_or(0) {
                continue;
            }
            match e {
                Event::Create { path, file } => {
                    names.insert(path.clone(), Node::File(*file));
                }
                Event::Mkdir { path } => {
                    names.insert(path.clone(), Node::Dir);
                }
                Event::Unlink { path } => {
                    names.remove(path);
                }
                Event::Rename { from, to, file } => {
                    let node = names.remove(from).or(file.map(Node::File));
                    if let Some(n) = node {
                        names.insert(to.clone(), n);
                    }
                }
                _ => {}
            }
        }

        // File contents: the durable ops, then each later one kept or lost (writes torn).
        let mut data: HashMap<u64, Vec<u8>> = self
            .files
            .iter()
            .map(|(_, id, b)| (*id, b.clone()))
            .collect();
        for (i, e) in events.iter().enumerate() {
            let file = match e {
                Event::Write { file, .. }
                | Event::Punch { file, .. }
                | Event::SetLen { file, .. } => *file,
                Event::Create { file, .. } => {
                    data.insert(*file, Vec::new());
                    continue;
                }
                _ => continue,
            };
            let durable = file_synced.get(&file).is_some_and(|&s| s > i);
            // Lost: 30%; whole: 40%; torn at sector boundaries: 30%.
            let roll: u32 = if durable || seed.is_none() {
                if durable {
                    50
                } else {
                    0
                }
            } else {
                rng.random_range(0..100)
            };
            if roll < 30 {
                continue;
            }
            let torn = roll >= 70 && !durable;
            let content = data.entry(file).or_default();
            match e {
                Event::Write { offset, bytes, .. } => {
                    let mut at = *offset;
                    let end = offset + bytes.len() as u64;
                    while at < end {
                        let next = ((at / SECTOR + 1) * SECTOR).min(end);
                        if !torn || rng.random_bool(0.5) {
                            let src = bytes
                                .get((at - offset) as usize..(next - offset) as usize)
                                .unwrap_or_default();
                            if content.len() < next as usize {
                                content.resize(next as usize, 0);
                            }
                            if let Some(d) = content.get_mut(at as usize..next as usize) {
                                d.copy_from_slice(src);
                            }
                        }
                        at = next;
                    }
                }
                Event::Punch { offset, len, .. } => {
                    let from = (*offset as usize).min(content.len());
                    let to = (offset.saturating_add(*len) as usize).min(content.len());
                    if let Some(d) = content.get_mut(from..to) {
                        d.fill(0);
                    }
                }
                Event::SetLen { len, .. } => content.resize(*len as usize, 0),
                _ => {}
            }
        }

        // The tree: an entry whose directory is gone is gone too.
        std::fs::create_dir(dst)?;
        let mut made: Vec<PathBuf> = vec![PathBuf::new()];
        for (path, node) in &names {
            if !made.contains(&parent(path)) {
                continue;
            }
            match node {
                Node::Dir => {
                    std::fs::create_dir(dst.join(path))?;
                    made.push(path.clone());
                }
                Node::File(id) => {
                    let bytes = data.get(id).map(Vec::as_slice).unwrap_or_default();
                    std::fs::write(dst.join(path), bytes)?;
                }
            }
        }
        Ok(())
    }
}
