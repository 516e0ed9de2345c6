//! Atomic replacement of a whole file, the one way the crate writes a file that must appear
//! complete or not at all (config, policy, queues, the tokens file, `get --out`, exports):
//! a temporary file in the same directory (`NAME.tmp` for the store's own files, an
//! unpredictable `.NAME.<random>.footage-partial` for user-named ones; `O_EXCL`, links never
//! followed),
//! written through [`super::write_all_at`], made durable with [`super::sync_all`], then renamed
//! into place (replacing, or refusing anything already there), and the directory synced.
//!
//! Every step goes through this layer's hooks (faults and the power-loss recorder), so the
//! fault and power-loss tests reach every atomic write.
//!
//! Invariants: a crash or an error at any step leaves the old file (or nothing) at the final
//! path, never a partial one; a [`TempFile`] dropped before it is placed removes its
//! temporary file; [`Place::NoReplace`] never replaces anything at the final path, a dangling
//! link included.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// What placing a temporary file does to a file already at the final path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Replace it (`rename(2)`; a link there is replaced, never written through).
    Replace,
    /// Fail with `AlreadyExists` and leave it (`renameat2(RENAME_NOREPLACE)`).
    NoReplace,
}

/// A temporary file being written, to be placed at its final path.
pub struct TempFile {
    file: File,
    path: PathBuf,
    offset: u64,
    placed: bool,
}

impl TempFile {
    /// Creates a temporary file for `stem` in `dir` (`.STEM.<64 random bits>.footage-partial`:
    /// an unpredictable name, so nobody can plant a link there first), with permission bits
    /// `mode`. For files in directories users name (`get --out`, exports, dock notes).
    pub fn create(dir: &Path, stem: &str, mode: u32) -> io::Result<TempFile> {
        let mut last = None;
        for _ in 0..crate::perms::TEMP_TRIES {
            let path = dir.join(format!(
                ".{stem}.{:016x}{}",
                rand::random::<u64>(),
                crate::perms::TEMP_SUFFIX
            ));
            let open = || crate::perms::create_new_mode(&path, mode);
            let made = if super::hooks() & super::HOOK_RECORD == 0 {
                open()
            } else {
                super::record::create(&path, false, open)
            };
            match made {
                Ok(file) => {
                    return Ok(TempFile {
                        file,
                        path,
                        offset: 0,
                        placed: false,
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists)))
    }

    /// Creates the temporary file `NAME.tmp` beside `path` (a stale one from a crash is
    /// replaced), with permission bits `mode`: for the store's own files, whose directory
    /// holds one writer at a time, so a crash leaves at most one such file per name.
    pub fn beside(path: &Path, mode: u32) -> io::Result<TempFile> {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".tmp");
        let tmp = path.with_file_name(name);
        let open = || crate::perms::replace_temp(&tmp, mode);
        let file = if super::hooks() & super::HOOK_RECORD == 0 {
            open()
        } else {
            super::record::create(&tmp, true, open)
        }?;
        Ok(TempFile {
            file,
            path: tmp,
            offset: 0,
            placed: false,
        })
    }

    /// The temporary file's path (for error messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes every byte written durable (`fsync`, at sync site `site`).
    pub fn sync(&self, site: &'static str) -> io::Result<()> {
        super::sync_all(&self.file, site)
    }

    /// Renames the file to `to` (durable once its directory is synced: [`sync_dir`] or
    /// [`TempFile::commit`]). Call [`TempFile::sync`] first.
    ///
    /// [`sync_dir`]: super::sync_dir
    pub fn place(mut self, to: &Path, how: Place) -> io::Result<()> {
        let (from, to_path) = (self.path.clone(), to.to_path_buf());
        let op = || match how {
            Place::Replace => std::fs::rename(&from, &to_path),
            Place::NoReplace => crate::perms::rename_no_replace(&from, &to_path),
        };
        if super::hooks() & super::HOOK_RECORD == 0 {
            op()?;
        } else {
            super::record::rename(&from, &to_path, op)?;
        }
        self.placed = true;
        Ok(())
    }

    /// The whole protocol after the writes: sync the file (sync site `site`), the crash point
    /// `before_place` (`crate::fail`), place it at `to`, sync its directory (site `dir_site`).
    pub fn commit(
        self,
        to: &Path,
        how: Place,
        site: &'static str,
        before_place: &str,
        dir_site: &'static str,
    ) -> io::Result<()> {
        self.sync(site)?;
        crate::fail::point(before_place);
        let dir = to
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or_else(|| Path::new("."))
            .to_path_buf();
        self.place(to, how)?;
        super::sync_dir(&dir, dir_site)
    }
}

impl io::Write for TempFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        super::write_all_at(&self.file, buf, self.offset)?;
        self.offset += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.placed {
            let _ = super::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn placed_whole_or_not_at_all_and_no_replace_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let to = dir.path().join("f");
        let mut t = TempFile::create(dir.path(), "f", 0o600).unwrap();
        t.write_all(b"one").unwrap();
        t.commit(&to, Place::Replace, "t.file", "t.place", "t.dir")
            .unwrap();
        assert_eq!(std::fs::read(&to).unwrap(), b"one");
        let mut t = TempFile::create(dir.path(), "f", 0o600).unwrap();
        t.write_all(b"two").unwrap();
        let tmp = t.path().to_path_buf();
        let e = t
            .commit(&to, Place::NoReplace, "t.file", "t.place", "t.dir")
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&to).unwrap(), b"one");
        assert!(!tmp.exists(), "the refused temporary file is removed");
        // Dropped unplaced: nothing left.
        let t = TempFile::create(dir.path(), "g", 0o600).unwrap();
        let tmp = t.path().to_path_buf();
        drop(t);
        assert!(!tmp.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
