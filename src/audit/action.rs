//! The vocabulary of the audit log: what an entry says was done, as a type.
//!
//! Each action has one name (the `action` field of an entry, FORMAT.md §14, unchanged on disk)
//! and one durability, fixed by its kind rather than by the caller:
//! - **accesses** (reads, queries, views, verifications, listings) are written before the call
//!   returns and made durable in batches ([`Durability::Batched`]);
//! - **everything else** (ingest, changes, exports, cloud events, token changes, retention
//!   runs, an embedder's own actions) is durable before the call returns
//!   ([`Durability::Durable`]). One caller overrides this: the `ingest` entry of a new segment
//!   is batched, because its commit record names the actor and open rewrites the entry if a
//!   power cut lost it (`store::ingest::commit`, FORMAT.md §11).
//!
//! Invariants: [`Action::parse`] of [`Action::name`] gives the same action back; a name that is
//! not one of the built-in actions parses as [`Action::Custom`], which is durable. A custom name
//! is checked when it is recorded (1 to 64 printable ASCII characters, no spaces).

use super::Durability;
use crate::format::change::Op;

/// What an audit entry records. Built-in actions have variants; an embedder records its own
/// with [`Action::Custom`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// Segment bytes were read (whole or a range).
    Read,
    /// The catalogue was searched (one page or all pages of a query).
    Query,
    /// A reviewer opened a segment in a player.
    View,
    /// A segment's metadata was shown.
    Info,
    /// A segment's GPS track was shown.
    Track,
    /// Stored bytes were checked against their checksums.
    Verify,
    /// Resumable uploads in progress were listed.
    List,
    /// Store statistics were shown.
    Stats,
    /// A segment was downloaded as a file.
    Download,
    /// A playback ticket (a short-lived link to a segment's video) was issued.
    Ticket,
    /// A video request answered "not modified" (the client's copy is current).
    VideoNotModified,
    /// A video request for a range outside the segment was refused.
    VideoRangeRefused,
    /// A video's headers were fetched without its bytes (HTTP HEAD).
    VideoHead,
    /// The catalogue was published to the force's fleet table (`fleet publish`: read and
    /// copied out, the store unchanged).
    FleetPublish,
    /// A segment was stored (also a duplicate delivery of one already stored).
    Ingest,
    /// Segments were exported to a directory with a custody manifest.
    Export,
    /// A category was added to a segment.
    Categorize,
    /// A category was removed from a segment.
    Uncategorize,
    /// A tag was added to a segment.
    Tag,
    /// A tag was removed from a segment.
    Untag,
    /// A segment was linked to a case.
    Case,
    /// A segment was unlinked from a case.
    Uncase,
    /// A legal hold was placed on a segment.
    Hold,
    /// A legal hold was released.
    Release,
    /// A refused attempt to release a hold (the caller's role may not).
    ReleaseRefused,
    /// A segment's cloud copy was written and verified.
    Upload,
    /// A segment's local bytes were dropped, its cloud copy kept.
    Evict,
    /// A segment was deleted by retention.
    Delete,
    /// A segment's state was restated after recovery.
    Restate,
    /// A segment was pinned to local disk.
    Pin,
    /// A pin was removed.
    Unpin,
    /// A segment's bytes were brought back from its cloud copy.
    Restore,
    /// Volumes were compacted (space of dropped chunks reclaimed).
    Compact,
    /// Damaged chunks were repaired from the cloud copy.
    Repair,
    /// A repair was attempted and failed.
    RepairFailed,
    /// Damage to a segment was found.
    Corruption,
    /// A resumable upload was created.
    UploadCreate,
    /// A resumable upload finished and its segment was stored.
    UploadComplete,
    /// A resumable upload was cancelled by its client.
    UploadTerminate,
    /// An unfinished resumable upload expired and was removed.
    UploadExpire,
    /// An HTTP token was added.
    TokenAdd,
    /// An HTTP token was removed.
    TokenRemove,
    /// The journal of token changes was found damaged.
    TokenJournalDamaged,
    /// The HTTP server was started with authentication off.
    AuthDisabled,
    /// A retention run changed something.
    Retention,
    /// A retention run failed, in whole or in part.
    RetentionError,
    /// The log's own chain-head checkpoint (written by the store only).
    Head,
    /// The log found and recorded damage to itself at open (written by the store only).
    AuditRecovery,
    /// An action of the embedding application: 1 to 64 printable ASCII characters, no
    /// spaces; durable.
    Custom(String),
}

/// Every built-in action with its name, in one table so names cannot drift.
const BUILT_IN: &[(Action, &str)] = &[
    (Action::Read, "read"),
    (Action::Query, "query"),
    (Action::View, "view"),
    (Action::Info, "info"),
    (Action::Track, "track"),
    (Action::Verify, "verify"),
    (Action::List, "list"),
    (Action::Stats, "stats"),
    (Action::Download, "download"),
    (Action::Ticket, "ticket"),
    (Action::VideoNotModified, "video-not-modified"),
    (Action::VideoRangeRefused, "video-range-refused"),
    (Action::VideoHead, "video-head"),
    (Action::FleetPublish, "fleet-publish"),
    (Action::Ingest, "ingest"),
    (Action::Export, "export"),
    (Action::Categorize, "categorize"),
    (Action::Uncategorize, "uncategorize"),
    (Action::Tag, "tag"),
    (Action::Untag, "untag"),
    (Action::Case, "case"),
    (Action::Uncase, "uncase"),
    (Action::Hold, "hold"),
    (Action::Release, "release"),
    (Action::ReleaseRefused, "release-refused"),
    (Action::Upload, "upload"),
    (Action::Evict, "evict"),
    (Action::Delete, "delete"),
    (Action::Restate, "restate"),
    (Action::Pin, "pin"),
    (Action::Unpin, "unpin"),
    (Action::Restore, "restore"),
    (Action::Compact, "compact"),
    (Action::Repair, "repair"),
    (Action::RepairFailed, "repair-failed"),
    (Action::Corruption, "corruption"),
    (Action::UploadCreate, "upload-create"),
    (Action::UploadComplete, "upload-complete"),
    (Action::UploadTerminate, "upload-terminate"),
    (Action::UploadExpire, "upload-expire"),
    (Action::TokenAdd, "token-add"),
    (Action::TokenRemove, "token-remove"),
    (Action::TokenJournalDamaged, "token-journal-damaged"),
    (Action::AuthDisabled, "auth-disabled"),
    (Action::Retention, "retention"),
    (Action::RetentionError, "retention-error"),
    (Action::Head, "head"),
    (Action::AuditRecovery, "audit-recovery"),
];

impl Action {
    /// The action of an entry named `name`: a built-in one, else [`Action::Custom`].
    pub fn parse(name: &str) -> Action {
        BUILT_IN
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(a, _)| a.clone())
            .unwrap_or_else(|| Action::Custom(name.to_string()))
    }

    /// The name written in the entry's `action` field.
    pub fn name(&self) -> &str {
        match self {
            Action::Custom(name) => name,
            built_in => BUILT_IN
                .iter()
                .find(|(a, _)| a == built_in)
                .map_or("", |(_, n)| n),
        }
    }

    /// Whether this is an access (read, query, view...) rather than a change or event.
    pub fn is_access(&self) -> bool {
        matches!(
            self,
            Action::Read
                | Action::Query
                | Action::View
                | Action::Info
                | Action::Track
                | Action::Verify
                | Action::List
                | Action::Stats
                | Action::Download
                | Action::Ticket
                | Action::VideoNotModified
                | Action::VideoRangeRefused
                | Action::VideoHead
                | Action::FleetPublish
        )
    }

    /// How the entry is made durable: accesses in batches, everything else before returning.
    pub fn durability(&self) -> Durability {
        if self.is_access() {
            Durability::Batched
        } else {
            Durability::Durable
        }
    }

    /// Every access action, in the order of [`Action::parse`]'s table.
    pub fn accesses() -> impl Iterator<Item = &'static str> {
        BUILT_IN
            .iter()
            .filter(|(a, _)| a.is_access())
            .map(|(_, n)| *n)
    }
}

impl From<Op> for Action {
    fn from(op: Op) -> Action {
        match op {
            Op::AddCategory => Action::Categorize,
            Op::RemoveCategory => Action::Uncategorize,
            Op::AddTag => Action::Tag,
            Op::RemoveTag => Action::Untag,
            Op::AddCase => Action::Case,
            Op::RemoveCase => Action::Uncase,
            Op::Hold => Action::Hold,
            Op::Release => Action::Release,
            Op::Uploaded => Action::Upload,
            Op::Evicted => Action::Evict,
            Op::Deleted => Action::Delete,
            Op::Restate => Action::Restate,
            Op::Pin => Action::Pin,
            Op::Unpin => Action::Unpin,
            Op::Restored => Action::Restore,
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_to_its_action_and_names_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for (a, n) in BUILT_IN {
            assert_eq!(a.name(), *n);
            assert_eq!(&Action::parse(n), a);
            assert!(seen.insert(*n), "{n} twice");
        }
        assert_eq!(Action::parse("note"), Action::Custom("note".into()));
        assert_eq!(Action::Custom("note".into()).name(), "note");
    }

    #[test]
    fn change_ops_keep_their_audit_names() {
        use Op::*;
        let all = [
            AddCategory,
            RemoveCategory,
            AddTag,
            RemoveTag,
            AddCase,
            RemoveCase,
            Hold,
            Release,
            Uploaded,
            Evicted,
            Deleted,
            Restate,
            Pin,
            Unpin,
            Restored,
        ];
        for op in all {
            assert_eq!(Action::from(op).name(), op.name(), "{op:?}");
        }
    }

    #[test]
    fn only_accesses_are_batched() {
        assert_eq!(
            Action::accesses().collect::<Vec<_>>(),
            [
                "read",
                "query",
                "view",
                "info",
                "track",
                "verify",
                "list",
                "stats",
                "download",
                "ticket",
                "video-not-modified",
                "video-range-refused",
                "video-head",
                "fleet-publish"
            ]
        );
        assert_eq!(Action::Ingest.durability(), Durability::Durable);
        assert_eq!(
            Action::Custom("view2".into()).durability(),
            Durability::Durable
        );
        assert_eq!(Action::View.durability(), Durability::Batched);
    }
}
