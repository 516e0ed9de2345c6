//! Appending to an active volume, with group commit.
//!
//! Invariants:
//! - records are appended at [`next_header_pos`] of the previous record's end, under the write
//!   lock, so the volume is always a valid sequence of records followed by nothing;
//! - a failed write cuts the file back to the previous end, so a disk-full error leaves no
//!   partial record behind and the next append can succeed once space is freed;
//! - `sync_to(x)` returns only when every byte below `x` is durable. Concurrent callers share
//!   one `fdatasync`: whoever finds no sync running becomes the leader and syncs everything
//!   written so far; the others wait for it (group commit);
//! - after a failed fsync the writer is poisoned and refuses every later append and sync
//!   (the kernel may have dropped the dirty pages; retrying could report success wrongly),
//!   and the file is cut back to the end of the last successful fsync, so records nobody was
//!   told are durable do not come back at the next open;
//! - [`VolumeWriter::start_writeback`] only asks the kernel to begin writing a range early
//!   (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, which neither waits nor makes anything
//!   durable); durability is decided by `sync_to`'s `fdatasync` alone, which also reports any
//!   writeback error, including one from a write-out started early.

use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use super::volume::Volume;
use crate::error::{Error, Result};
use crate::format::record::{next_header_pos, record_end, Kind, RecordHeader, HEADER_LEN};
use crate::format::volume::Seal;
use crate::fsio::write_all_at;

struct WriteState {
    end: u64,
    sealed: bool,
    poisoned: bool,
}

struct SyncState {
    synced: u64,
    syncing: bool,
    poisoned: bool,
}

pub struct VolumeWriter {
    pub volume: Arc<Volume>,
    cap: u64,
    state: Mutex<WriteState>,
    sync: Mutex<SyncState>,
    synced_cv: Condvar,
}

/// Outcome of an append.
pub enum Appended {
    /// Written; the record's header is at this offset.
    At(u64),
    /// The volume is full or sealed: seal it and append to a new one.
    Full,
}

impl VolumeWriter {
    /// `end` is the end of the last valid record (the file length after recovery); everything
    /// below it is assumed durable.
    pub fn new(volume: Arc<Volume>, end: u64, cap: u64) -> VolumeWriter {
        VolumeWriter {
            volume,
            cap,
            state: Mutex::new(WriteState {
                end,
                sealed: false,
                poisoned: false,
            }),
            sync: Mutex::new(SyncState {
                synced: end,
                syncing: false,
                poisoned: false,
            }),
            synced_cv: Condvar::new(),
        }
    }

    pub fn end(&self) -> u64 {
        self.state.lock().end
    }

    /// Every byte below this offset is durable: an fdatasync that started after it was
    /// written has returned (or, at open, the volume was synced up to here).
    pub fn synced(&self) -> u64 {
        self.sync.lock().synced
    }

    pub fn is_sealed(&self) -> bool {
        self.state.lock().sealed
    }

    /// The end of the records while the volume takes writes; `None` once a seal record is
    /// appended (read under one lock, so an end never includes a seal record unknowingly).
    pub fn active_end(&self) -> Option<u64> {
        let st = self.state.lock();
        (!st.sealed).then_some(st.end)
    }

    /// Appends one record. A volume accepts records until its size cap; a record that would
    /// cross the cap goes to the next volume, unless this volume is empty (a record larger
    /// than the cap still has to go somewhere).
    ///
    /// The payload is the concatenation of `parts`, written in place one after the other, so
    /// a payload split across buffers needs no copy.
    pub fn append(&self, kind: Kind, a: u64, b: u32, parts: &[&[u8]]) -> Result<Appended> {
        self.append_record(RecordHeader::from_parts(kind, parts, a, b), parts)
    }

    /// Appends a record whose header the caller made (a chunk with a block CRC trailer, or a
    /// verified record copied as it is); `header.len` must be the length of `parts`.
    pub fn append_record(&self, header: RecordHeader, parts: &[&[u8]]) -> Result<Appended> {
        let given: usize = parts.iter().map(|p| p.len()).sum();
        if given != header.len as usize {
            return Err(Error::Invalid(format!(
                "record header says {} bytes, payload has {given}",
                header.len
            )));
        }
        let mut st = self.state.lock();
        self.append_locked(&mut st, header, parts)
    }

    fn append_locked(
        &self,
        st: &mut WriteState,
        header: RecordHeader,
        parts: &[&[u8]],
    ) -> Result<Appended> {
        let kind = header.kind;
        if st.poisoned {
            return Err(Error::Poisoned {
                path: self.volume.path.clone(),
            });
        }
        if st.sealed {
            return Ok(Appended::Full);
        }
        let pos = next_header_pos(st.end);
        let end = record_end(pos, header.len);
        let empty = st.end <= crate::format::volume::VOLUME_HEADER_LEN as u64;
        if end > self.cap && !empty && kind != Kind::Seal {
            return Ok(Appended::Full);
        }
        if let Err(e) = self.write_record(pos, &header, parts) {
            // Cut back so no partial record stays behind; if even that fails, stop writing.
            if crate::fsio::set_len(self.volume.file(), st.end).is_err() {
                st.poisoned = true;
            }
            return Err(Error::io(&self.volume.path, e));
        }
        st.end = end;
        Ok(Appended::At(pos))
    }

    fn write_record(
        &self,
        pos: u64,
        header: &RecordHeader,
        parts: &[&[u8]],
    ) -> std::io::Result<()> {
        let file = self.volume.file();
        if header.len <= 64 * 1024 {
            // Small records (commits, seals, short last chunks) in one write.
            let mut buf = Vec::with_capacity(HEADER_LEN as usize + header.len as usize);
            buf.extend_from_slice(&header.encode());
            for p in parts {
                buf.extend_from_slice(p);
            }
            write_all_at(file, &buf, pos)
        } else {
            write_all_at(file, &header.encode(), pos)?;
            let mut at = pos + HEADER_LEN;
            for p in parts {
                write_all_at(file, p, at)?;
                at += p.len() as u64;
            }
            Ok(())
        }
    }

    /// Asks the kernel to start writing bytes `from..to` to the device now, without waiting for
    /// it, so that the `fdatasync` which later makes them durable finds little left to write
    /// and the device works while the caller goes on (hashing, appending the next chunk).
    /// A hint only: nothing is durable until `sync_to` says so. An error is ignored here on
    /// purpose: a failed write-out marks the file's mapping, and the next `fdatasync` of this
    /// descriptor reports it (the flag `SYNC_FILE_RANGE_WRITE` alone does not consume the
    /// error), which poisons the writer.
    pub fn start_writeback(&self, from: u64, to: u64) {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let (Ok(off), Ok(len)) = (i64::try_from(from), i64::try_from(to.saturating_sub(from)))
            else {
                return;
            };
            // SAFETY: an advisory call on an open descriptor, with no memory passed.
            unsafe {
                libc::sync_file_range(
                    self.volume.file().as_raw_fd(),
                    off,
                    len,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (from, to);
    }

    /// Returns once every byte below `upto` is durable, sharing fsyncs with concurrent callers.
    pub fn sync_to(&self, upto: u64) -> Result<()> {
        let mut s = self.sync.lock();
        loop {
            if s.poisoned {
                return Err(Error::Poisoned {
                    path: self.volume.path.clone(),
                });
            }
            if s.synced >= upto {
                return Ok(());
            }
            if s.syncing {
                self.synced_cv.wait(&mut s);
                continue;
            }
            s.syncing = true;
            let target = self.state.lock().end;
            drop(s);
            let r = crate::fsio::sync_data(self.volume.file(), "volume.append");
            s = self.sync.lock();
            s.syncing = false;
            match r {
                Ok(()) => s.synced = s.synced.max(target),
                Err(e) => {
                    s.poisoned = true;
                    self.poison(s.synced);
                    self.synced_cv.notify_all();
                    return Err(Error::io(&self.volume.path, e));
                }
            }
            self.synced_cv.notify_all();
        }
    }

    /// After a failed fsync: refuse every later append, and cut the file back to `synced`, the
    /// end of what earlier fsyncs made durable. Every record past it belongs to a caller that
    /// is being told its sync failed (none was acknowledged), so a reopen cannot bring one
    /// of them back (a commit whose fsync failed must not become visible later). Best effort:
    /// if the cut fails, such records may reappear at the next open, complete and checked,
    /// exactly as after a crash during their fsync.
    fn poison(&self, synced: u64) {
        let mut st = self.state.lock();
        st.poisoned = true;
        if st.end > synced && crate::fsio::set_len(self.volume.file(), synced).is_ok() {
            st.end = synced;
        }
    }

    /// Appends a seal record and makes the whole volume durable; later appends get `Full`.
    pub fn seal(&self, now_us: i64) -> Result<()> {
        let seal = Seal {
            volume_id: self.volume.id,
            sealed_us: now_us,
        };
        let payload = seal.encode();
        let end = {
            let mut st = self.state.lock();
            if st.sealed {
                return Ok(());
            }
            let header = RecordHeader::new(Kind::Seal, &payload, u64::from(self.volume.id), 0);
            let at = self.append_locked(&mut st, header, &[&payload])?;
            st.sealed = true;
            match at {
                Appended::At(pos) => record_end(pos, payload.len() as u32),
                Appended::Full => st.end,
            }
        };
        self.sync_to(end)?;
        self.volume.map_sealed()
    }
}
