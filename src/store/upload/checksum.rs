//! Per-request checksums of resumable uploads: the tus 1.0 `checksum` extension
//! (`Upload-Checksum: <algorithm> <base64 digest>` on a PATCH), parsed and computed here; the
//! store side of the rule is in `upload.rs` ([`super::UploadPatch::expect_checksum`]).
//!
//! Invariants:
//! - a header is accepted only with a supported algorithm ([`ChecksumAlgorithm::NAMES`]) and a
//!   digest of exactly that algorithm's length, in standard base64 (padding required as tus
//!   clients send it); anything else is a typed refusal, never a panic;
//! - the digest is taken over exactly the bytes of the request's body that were handed to the
//!   upload, in order; a body cut short or longer than the upload never matches (its bytes
//!   are not counted).

use base64::Engine;
use sha2::Digest;

/// The checksum algorithms supported, as tus names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumAlgorithm {
    /// What most tus clients send (tuspy, tusd's default list).
    Sha1,
    Sha256,
}

impl ChecksumAlgorithm {
    /// The `Tus-Checksum-Algorithm` header value.
    pub const NAMES: &'static str = "sha1,sha256";

    fn from_name(name: &str) -> Option<ChecksumAlgorithm> {
        match name.to_ascii_lowercase().as_str() {
            "sha1" => Some(ChecksumAlgorithm::Sha1),
            "sha256" => Some(ChecksumAlgorithm::Sha256),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Sha1 => "sha1",
            ChecksumAlgorithm::Sha256 => "sha256",
        }
    }

    fn digest_len(self) -> usize {
        match self {
            ChecksumAlgorithm::Sha1 => 20,
            ChecksumAlgorithm::Sha256 => 32,
        }
    }
}

/// Why an `Upload-Checksum` header is refused (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChecksumHeaderError {
    #[error("Upload-Checksum algorithm {0:?} is not supported: use one of {names}", names = ChecksumAlgorithm::NAMES)]
    Unsupported(String),
    #[error("Upload-Checksum must be `<algorithm> <base64 digest>` with a {0}-byte digest")]
    Malformed(usize),
}

/// The checksum a request announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadChecksum {
    pub algorithm: ChecksumAlgorithm,
    expected: Vec<u8>,
}

impl UploadChecksum {
    /// Parses an `Upload-Checksum` header value.
    pub fn parse(value: &str) -> Result<UploadChecksum, ChecksumHeaderError> {
        let mut parts = value.split_ascii_whitespace();
        let name = parts.next().unwrap_or_default();
        let algorithm = ChecksumAlgorithm::from_name(name)
            .ok_or_else(|| ChecksumHeaderError::Unsupported(name.chars().take(32).collect()))?;
        let malformed = ChecksumHeaderError::Malformed(algorithm.digest_len());
        let (Some(digest), None) = (parts.next(), parts.next()) else {
            return Err(malformed);
        };
        let expected = base64::engine::general_purpose::STANDARD
            .decode(digest)
            .ok()
            .filter(|d| d.len() == algorithm.digest_len())
            .ok_or(malformed)?;
        Ok(UploadChecksum {
            algorithm,
            expected,
        })
    }

    /// A checksum of `algorithm` expecting `digest` (tests and clients).
    pub fn new(algorithm: ChecksumAlgorithm, digest: &[u8]) -> Option<UploadChecksum> {
        (digest.len() == algorithm.digest_len()).then(|| UploadChecksum {
            algorithm,
            expected: digest.to_vec(),
        })
    }

    pub(crate) fn running(&self) -> Running {
        match self.algorithm {
            ChecksumAlgorithm::Sha1 => Running::Sha1(sha1::Sha1::new()),
            ChecksumAlgorithm::Sha256 => Running::Sha256(sha2::Sha256::new()),
        }
    }

    pub(crate) fn matches(&self, running: &Running) -> bool {
        running.digest() == self.expected
    }
}

/// The digest of a request's body so far.
#[derive(Clone)]
pub(crate) enum Running {
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl Running {
    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            Running::Sha1(h) => h.update(data),
            Running::Sha256(h) => h.update(data),
        }
    }

    fn digest(&self) -> Vec<u8> {
        match self {
            Running::Sha1(h) => h.clone().finalize().to_vec(),
            Running::Sha256(h) => h.clone().finalize().to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(d: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(d)
    }

    #[test]
    fn headers_parse_or_are_refused_with_a_reason() {
        let body = b"the quick brown fox";
        let sha1 = sha1::Sha1::digest(body);
        let sha256 = sha2::Sha256::digest(body);
        for (value, alg) in [
            (format!("sha1 {}", b64(&sha1)), ChecksumAlgorithm::Sha1),
            (
                format!("SHA256  {}", b64(&sha256)),
                ChecksumAlgorithm::Sha256,
            ),
        ] {
            let c = UploadChecksum::parse(&value).unwrap();
            assert_eq!(c.algorithm, alg);
            let mut r = c.running();
            r.update(&body[..4]);
            assert!(!c.matches(&r));
            r.update(&body[4..]);
            assert!(c.matches(&r));
        }
        assert_eq!(
            UploadChecksum::parse(&format!("md5 {}", b64(&[0; 16]))),
            Err(ChecksumHeaderError::Unsupported("md5".into()))
        );
        assert!(matches!(
            UploadChecksum::parse(""),
            Err(ChecksumHeaderError::Unsupported(_))
        ));
        for bad in [
            "sha1".to_string(),
            "sha1 !!!".into(),
            format!("sha1 {}", b64(&sha256)),
            format!("sha256 {}", b64(&sha1)),
            format!("sha1 {} extra", b64(&sha1)),
        ] {
            assert!(
                matches!(
                    UploadChecksum::parse(&bad),
                    Err(ChecksumHeaderError::Malformed(_))
                ),
                "{bad:?}"
            );
        }
        assert!(UploadChecksum::new(ChecksumAlgorithm::Sha1, &[0; 32]).is_none());
    }
}
