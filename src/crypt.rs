//! Encryption at rest: the store key, its id, and AEAD sealing of chunk payloads, cloud
//! blocks and cloud `meta.json` records with AES-256-GCM (docs/FORMAT.md §20).
//!
//! Scheme. The 32-byte store key `K` never touches the disk. Everything is sealed under a key
//! derived per segment, `K_seg = HMAC-SHA256(K, label ‖ store_id ‖ segment_id)`, with a fresh
//! random 96-bit nonce per sealed message, stored in front of the ciphertext:
//!
//! ```text
//! sealed = nonce[12] ‖ AES-256-GCM(K_seg, nonce, plaintext, aad) ‖ tag[16]
//! aad    = domain[4] ‖ store_id[16] ‖ segment_id u64 ‖ index u64      (little-endian)
//! ```
//!
//! Invariants:
//! - a nonce is never chosen from anything on disk (ids or offsets can be handed out again
//!   after a crash cut a torn tail): it comes from the OS-seeded CSPRNG for every message, and
//!   one derived key seals at most a few thousand messages (one segment), so the chance that
//!   two messages under one key share a nonce stays below 2^-60 (an 8 GB segment: 8,000
//!   chunks plus 8,000 cloud blocks, p ≈ n²/2^97);
//! - the AAD binds every message to its store, segment, position and purpose (`domain`), so a
//!   sealed chunk moved to another segment, another index or another store fails its tag;
//! - the key id (`HMAC-SHA256(K, "footage-v1 key id")`, first 16 bytes) is what footage.toml
//!   and cloud records carry: it identifies the key without revealing it;
//! - no function here panics on bad input; a failed tag is [`Tampered`];
//! - key material is wiped when dropped (`zeroize`): the store key ([`Key`]), the key text
//!   read from a file or `FOOTAGE_KEY`, derived segment keys, and the AES key schedule and
//!   GHASH key inside a [`SegmentCipher`] (the `zeroize` features of `aes`, `ghash` and
//!   `polyval`). Not wiped: the environment variable itself (the process environment cannot
//!   be rewritten safely once threads run) and the HMAC state while a key is derived;
//! - a key file that its group or others may read or write is refused
//!   ([`Key::from_file`]).

use std::fmt;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{Error, Result};

/// Name of the algorithm in footage.toml and cloud records.
pub const ALGORITHM: &str = "aes-256-gcm";
pub const KEY_LEN: usize = 32;
pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;
/// Bytes a sealed message has beyond its plaintext (nonce + tag).
pub const OVERHEAD: usize = NONCE_LEN + TAG_LEN;
/// Environment variable holding the key as hex or base64 text.
pub const KEY_ENV: &str = "FOOTAGE_KEY";

/// AAD domain of a chunk payload in a volume (`index` = chunk index).
pub const DOMAIN_CHUNK: [u8; 4] = *b"FTC1";
/// AAD domain of a 1 MiB block of a cloud part (`index` = block number in the segment).
pub const DOMAIN_BLOCK: [u8; 4] = *b"FTB1";
/// AAD domain of a cloud `meta.json` body (`index` = 0).
pub const DOMAIN_META: [u8; 4] = *b"FTM1";

const LABEL_SEGMENT: &[u8] = b"footage-v1 segment key";
const LABEL_KEY_ID: &[u8] = b"footage-v1 key id";
/// A key file is at most this long (a raw key is 32 bytes, base64 text 44 and a line
/// end): reading stops here, so the buffer holding key text never grows and leaves copies.
const MAX_KEY_FILE: u64 = 4096;

// The AES key schedule inside a `SegmentCipher` wipes itself on drop: fails to build if the
// `zeroize` feature of `aes` is ever dropped from Cargo.toml.
const _: fn() = || {
    fn wiped_on_drop<T: ZeroizeOnDrop>() {}
    wiped_on_drop::<aes::Aes256>();
};

/// A message failed its authentication tag: altered, moved, or sealed under another key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tampered;

impl fmt::Display for Tampered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "AES-256-GCM authentication failed: the bytes were altered or moved (tampering)",
        )
    }
}

/// The 32-byte store key. Its bytes are wiped on drop and never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Key([u8; KEY_LEN]);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key(id {})", self.id())
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ZeroizeOnDrop for Key {}

fn key_error(what: impl Into<String>) -> Error {
    Error::Key(what.into())
}

impl Key {
    /// The key made of these 32 bytes (for AES-256-GCM).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Key {
        Key(bytes)
    }

    /// A new random key (from the OS-seeded CSPRNG).
    pub fn generate() -> Key {
        Key(rand::random())
    }

    /// Parses a key written as text: 64 hex digits, or base64 (standard or URL-safe alphabet,
    /// with or without padding) of 32 bytes. Surrounding whitespace is ignored.
    pub fn parse(text: &str) -> Result<Key> {
        let t = text.trim();
        if t.len() == 2 * KEY_LEN && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut out = Key([0u8; KEY_LEN]);
            for (i, b) in out.0.iter_mut().enumerate() {
                let pair = t.get(2 * i..2 * i + 2).unwrap_or("");
                *b = u8::from_str_radix(pair, 16).map_err(|_| key_error("bad hex digit"))?;
            }
            return Ok(out);
        }
        use base64::engine::general_purpose::{
            STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD,
        };
        for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
            // Decoded into a buffer that is big enough from the start and wiped on drop.
            let mut v = Zeroizing::new(Vec::with_capacity(t.len()));
            if engine.decode_vec(t, &mut v).is_ok() {
                if let Ok(bytes) = <[u8; KEY_LEN]>::try_from(v.as_slice()) {
                    return Ok(Key(bytes));
                }
            }
        }
        Err(key_error(
            "a key must be 32 bytes written as 64 hex digits or as base64 (44 characters)",
        ))
    }

    /// Reads a key file: exactly 32 raw bytes, or the key as text (see [`Key::parse`]).
    /// Refuses a file that its group or others may read or write (mode `& 0o077` not 0).
    pub fn from_file(path: &Path) -> Result<Key> {
        let io = |e| Error::io(path, e);
        let file = std::fs::File::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        let mode = meta.mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(key_error(format!(
                "key file {} has mode {mode:04o}: its group or others can {}; it must be                  readable by its owner only (chmod 600 {})",
                path.display(),
                match (mode & 0o044 != 0, mode & 0o022 != 0) {
                    (true, true) => "read and change it",
                    (true, false) => "read it",
                    _ => "change it",
                },
                path.display()
            )));
        }
        if meta.len() > MAX_KEY_FILE {
            return Err(key_error(format!(
                "key file {} holds {} bytes: it must hold 32 raw bytes or the key as hex or \
                 base64 text",
                path.display(),
                meta.len()
            )));
        }
        let mut data = Zeroizing::new(Vec::with_capacity(MAX_KEY_FILE as usize + 1));
        file.take(MAX_KEY_FILE + 1)
            .read_to_end(&mut data)
            .map_err(io)?;
        if let Ok(raw) = <[u8; KEY_LEN]>::try_from(data.as_slice()) {
            // 32 bytes that are not 32 hex/base64 characters of a key: a raw key.
            return Ok(Key(raw));
        }
        let text = std::str::from_utf8(&data).map_err(|_| {
            key_error(format!(
                "key file {} holds {} bytes: it must hold 32 raw bytes or the key as hex or base64 text",
                path.display(),
                data.len()
            ))
        })?;
        Key::parse(text).map_err(|_| {
            key_error(format!(
                "key file {} holds {} bytes: it must hold 32 raw bytes or the key as 64 hex \
                 digits or base64",
                path.display(),
                data.len()
            ))
        })
    }

    /// The key from the `FOOTAGE_KEY` environment variable, if that variable is set.
    pub fn from_env() -> Result<Option<Key>> {
        match std::env::var(KEY_ENV).map(Zeroizing::new) {
            Ok(v) => Key::parse(&v)
                .map(Some)
                .map_err(|e| key_error(format!("{KEY_ENV}: {e}"))),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(key_error(format!("{KEY_ENV} is not valid text")))
            }
        }
    }

    fn hmac(&self, parts: &[&[u8]]) -> Zeroizing<[u8; 32]> {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(&self.0) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        };
        for p in parts {
            mac.update(p);
        }
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&mac.finalize().into_bytes());
        out
    }

    /// The key as 64 lower-case hex digits (for writing a new key file), wiped on drop.
    pub fn hex(&self) -> Zeroizing<String> {
        Zeroizing::new(crate::util::hex(&self.0))
    }

    /// The key id: 32 lower-case hex digits that name the key without revealing it.
    pub fn id(&self) -> String {
        let h = self.hmac(&[LABEL_KEY_ID]);
        crate::util::hex(h.get(..16).unwrap_or_default())
    }
}

/// The store's sealing context: its key and id.
pub struct Crypt {
    key: Key,
    store_id: [u8; 16],
}

impl fmt::Debug for Crypt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Crypt({ALGORITHM}, key id {})", self.key.id())
    }
}

impl Crypt {
    pub fn new(key: Key, store_id: [u8; 16]) -> Crypt {
        Crypt { key, store_id }
    }

    pub fn key_id(&self) -> String {
        self.key.id()
    }

    /// The cipher of one segment (derive once, seal or open all its messages with it).
    pub fn segment(&self, segment_id: u64) -> SegmentCipher {
        let k = self
            .key
            .hmac(&[LABEL_SEGMENT, &self.store_id, &segment_id.to_le_bytes()]);
        SegmentCipher {
            aead: Aes256Gcm::new(aes_gcm::Key::<Aes256Gcm>::from_slice(k.as_slice())),
            store_id: self.store_id,
            segment_id,
        }
    }
}

/// AES-256-GCM under one segment's derived key. Its AES key schedule and GHASH key are
/// wiped on drop (the `zeroize` features of `aes` and `polyval`); the derived key itself
/// never outlives [`Crypt::segment`].
pub struct SegmentCipher {
    aead: Aes256Gcm,
    store_id: [u8; 16],
    segment_id: u64,
}

impl ZeroizeOnDrop for SegmentCipher {}

impl SegmentCipher {
    fn aad(&self, domain: [u8; 4], index: u64) -> [u8; 36] {
        let mut a = [0u8; 36];
        a[0..4].copy_from_slice(&domain);
        a[4..20].copy_from_slice(&self.store_id);
        a[20..28].copy_from_slice(&self.segment_id.to_le_bytes());
        a[28..36].copy_from_slice(&index.to_le_bytes());
        a
    }

    /// Seals the concatenation of `parts`: returns nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, domain: [u8; 4], index: u64, parts: &[&[u8]]) -> Vec<u8> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let nonce: [u8; NONCE_LEN] = rand::random();
        let mut out = Vec::with_capacity(len + OVERHEAD);
        out.extend_from_slice(&nonce);
        for p in parts {
            out.extend_from_slice(p);
        }
        let aad = self.aad(domain, index);
        let body = out.get_mut(NONCE_LEN..).unwrap_or_default();
        match self
            .aead
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), &aad, body)
        {
            Ok(tag) => out.extend_from_slice(&tag),
            // Only refused for messages over 64 GiB; chunks and blocks are at most 16 MiB.
            Err(_) => unreachable!("AES-GCM message limit exceeded"),
        }
        out
    }

    /// Opens a sealed message; fails with [`Tampered`] if it does not authenticate.
    pub fn open(&self, domain: [u8; 4], index: u64, sealed: &[u8]) -> Result<Vec<u8>, Tampered> {
        if sealed.len() < OVERHEAD {
            return Err(Tampered);
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
        let mut out = body.to_vec();
        let aad = self.aad(domain, index);
        self.aead
            .decrypt_in_place_detached(
                Nonce::from_slice(nonce),
                &aad,
                &mut out,
                Tag::from_slice(tag),
            )
            .map_err(|_| Tampered)?;
        Ok(out)
    }
}

/// The nonce of a sealed message (for tests and diagnostics).
#[cfg_attr(not(feature = "internals"), allow(dead_code))] // used by the tests
pub fn nonce_of(sealed: &[u8]) -> Option<[u8; NONCE_LEN]> {
    sealed.get(..NONCE_LEN).and_then(|n| n.try_into().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STORE: [u8; 16] = [7; 16];

    #[test]
    fn sealed_messages_open_only_at_their_own_place_and_key() {
        let c = Crypt::new(Key::from_bytes([1; 32]), STORE);
        let s = c.segment(5);
        let m = s.seal(DOMAIN_CHUNK, 3, &[b"hello ", b"world"]);
        assert_eq!(m.len(), 11 + OVERHEAD);
        assert!(!m.windows(5).any(|w| w == b"hello"));
        assert_eq!(s.open(DOMAIN_CHUNK, 3, &m).unwrap(), b"hello world");
        assert_eq!(s.open(DOMAIN_CHUNK, 4, &m), Err(Tampered));
        assert_eq!(s.open(DOMAIN_BLOCK, 3, &m), Err(Tampered));
        assert_eq!(c.segment(6).open(DOMAIN_CHUNK, 3, &m), Err(Tampered));
        let other = Crypt::new(Key::from_bytes([2; 32]), STORE);
        assert_eq!(other.segment(5).open(DOMAIN_CHUNK, 3, &m), Err(Tampered));
        let other_store = Crypt::new(Key::from_bytes([1; 32]), [8; 16]);
        assert_eq!(
            other_store.segment(5).open(DOMAIN_CHUNK, 3, &m),
            Err(Tampered)
        );
        for i in 0..m.len() {
            let mut bad = m.clone();
            bad[i] ^= 0x40;
            assert_eq!(s.open(DOMAIN_CHUNK, 3, &bad), Err(Tampered), "byte {i}");
        }
        assert_eq!(s.open(DOMAIN_CHUNK, 3, &m[..OVERHEAD - 1]), Err(Tampered));
        // Two seals of the same bytes differ (fresh nonces).
        let m2 = s.seal(DOMAIN_CHUNK, 3, &[b"hello world"]);
        assert_ne!(nonce_of(&m), nonce_of(&m2));
        assert_ne!(m, m2);
    }

    #[test]
    fn keys_parse_from_hex_base64_and_raw_files() {
        let k = Key::generate();
        let hex = k.hex().to_string();
        assert_eq!(Key::parse(&format!("  {hex}\n")).unwrap(), k);
        assert_eq!(Key::parse(&hex.to_uppercase()).unwrap(), k);
        let b64 = base64::engine::general_purpose::STANDARD.encode(k.0);
        assert_eq!(Key::parse(&b64).unwrap(), k);
        assert!(Key::parse("abc").is_err());
        assert!(Key::parse(&hex[..62]).is_err());
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| {
            use std::os::unix::fs::PermissionsExt;
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
            p
        };
        let raw = write("raw", &k.0);
        assert_eq!(Key::from_file(&raw).unwrap(), k);
        let text = write("text", format!("{b64}\n").as_bytes());
        assert_eq!(Key::from_file(&text).unwrap(), k);
        let short = write("short", &[0u8; 31]);
        let e = Key::from_file(&short).unwrap_err().to_string();
        assert!(e.contains("31 bytes"), "{e}");
        // The id names the key, is stable, and is not the key.
        assert_eq!(k.id(), k.clone().id());
        assert_eq!(k.id().len(), 32);
        assert_ne!(k.id(), Key::generate().id());
        assert!(!hex.contains(&k.id()));
        assert!(!format!("{k:?}").contains(&hex));
    }
}
