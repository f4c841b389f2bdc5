//! What can go wrong in a room.
//!
//! [`ProtocolError`] is the answer to a frame the room will not take: too
//! large, malformed, unsupported, or over a limit. The room is unchanged
//! whenever one is returned, and the server closes that connection with
//! [`ProtocolError::code`] and the `Display` text as the reason. The texts
//! describe the client's own input and the limits, never server internals, so
//! they are safe to send back, and short enough for a close frame (at most
//! 123 bytes with the limits' usual magnitudes). [`LoadError`] is for stored
//! data that no longer decodes.

use super::ConnId;
use thiserror::Error;

/// A frame the room refused. Nothing in the room changed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    /// The frame is larger than `RoomLimits::max_message_bytes`.
    #[error("message too large: {size} bytes, the limit is {limit}")]
    MessageTooLarge {
        /// Size of the frame.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// Applying the update would grow the encoded document past
    /// `RoomLimits::max_document_bytes`; it was not applied.
    #[error("document too large: this edit would make it {size} bytes, the limit is {limit}")]
    DocumentTooLarge {
        /// Encoded size the document would have had.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The frame ends in the middle of a field.
    #[error("truncated message: it ends inside the {what}")]
    Truncated {
        /// The field being read.
        what: &'static str,
    },
    /// A field holds something impossible (an overlong varint, a length past
    /// the end of the frame, text that is not UTF-8, a clock out of range…).
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// The field being read.
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Bytes are left over after a complete message or field.
    #[error("{count} unexpected bytes after the {what}")]
    TrailingBytes {
        /// The message or field that should have ended.
        what: &'static str,
        /// How many bytes were left.
        count: usize,
    },
    /// The first varint is not 0, 1, 2, 3 or 100.
    #[error("unknown message type {0}")]
    UnknownMessageType(u64),
    /// A sync message that is not step 1 (0), step 2 (1) or update (2).
    #[error("unknown sync message type {0}")]
    UnknownSyncMessageType(u64),
    /// Well-formed document content that Ensemble's documents do not use
    /// (nested shared types, sub-documents, legacy JSON content).
    #[error("unsupported document content: {0}")]
    UnsupportedContent(&'static str),
    /// The update builds on document content the server does not have, and
    /// came where the client should have sent everything we lack (sync step
    /// 2); a reconnect resynchronizes from scratch.
    #[error("out of sync: the update builds on content the server does not have")]
    OutOfSync,
    /// yrs could not decode or apply the update.
    #[error("invalid document update: {0}")]
    InvalidUpdate(String),
    /// One awareness state is larger than
    /// `RoomLimits::max_awareness_state_bytes`.
    #[error("awareness state too large: {size} bytes, the limit is {limit}")]
    AwarenessStateTooLarge {
        /// Size of the JSON text.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The connection would control more awareness client ids than
    /// `RoomLimits::max_awareness_clients_per_connection`.
    #[error("too many awareness clients on one connection, the limit is {limit}")]
    TooManyAwarenessClients {
        /// The configured limit.
        limit: usize,
    },
    /// `receive` was called for a connection the room does not know: a bug
    /// in the caller, not in the client.
    #[error("unknown connection {0}")]
    UnknownConnection(ConnId),
}

impl ProtocolError {
    /// A short, stable code for logs, metrics and close frames:
    /// `message_too_large`, `document_too_large`, `malformed`,
    /// `unsupported`, `out_of_sync`, `limit` or `unknown_connection`.
    pub fn code(&self) -> &'static str {
        match self {
            ProtocolError::MessageTooLarge { .. } => "message_too_large",
            ProtocolError::DocumentTooLarge { .. } => "document_too_large",
            ProtocolError::Truncated { .. }
            | ProtocolError::Malformed { .. }
            | ProtocolError::TrailingBytes { .. }
            | ProtocolError::UnknownMessageType(_)
            | ProtocolError::UnknownSyncMessageType(_)
            | ProtocolError::InvalidUpdate(_) => "malformed",
            ProtocolError::UnsupportedContent(_) => "unsupported",
            ProtocolError::OutOfSync => "out_of_sync",
            ProtocolError::AwarenessStateTooLarge { .. }
            | ProtocolError::TooManyAwarenessClients { .. } => "limit",
            ProtocolError::UnknownConnection(_) => "unknown_connection",
        }
    }
}

/// Stored document data that could not be loaded into a room.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LoadError {
    /// The snapshot does not decode as a document update.
    #[error("stored snapshot is corrupt: {0}")]
    Snapshot(ProtocolError),
    /// One update of the log (0-based, in the order given) does not decode.
    #[error("stored update #{index} is corrupt: {source}")]
    Update {
        /// Position in the log as passed to `Room::load`.
        index: usize,
        /// What is wrong with it.
        source: ProtocolError,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_fits_a_close_frame() {
        let big = 1 << 40;
        let errors = [
            ProtocolError::MessageTooLarge {
                size: big,
                limit: big,
            },
            ProtocolError::DocumentTooLarge {
                size: big,
                limit: big,
            },
            ProtocolError::Truncated {
                what: "delete set client count",
            },
            ProtocolError::Malformed {
                what: "delete set client count",
                reason: "count larger than the message can hold",
            },
            ProtocolError::TrailingBytes {
                what: "awareness update",
                count: big,
            },
            ProtocolError::UnknownMessageType(u64::MAX),
            ProtocolError::UnknownSyncMessageType(u64::MAX),
            ProtocolError::UnsupportedContent("nested shared types"),
            ProtocolError::OutOfSync,
            ProtocolError::InvalidUpdate("x".repeat(80)),
            ProtocolError::AwarenessStateTooLarge {
                size: big,
                limit: big,
            },
            ProtocolError::TooManyAwarenessClients { limit: big },
            ProtocolError::UnknownConnection(ConnId(u64::MAX)),
        ];
        for e in errors {
            assert!(e.to_string().len() <= 123, "{e}");
        }
    }
}
