//! Ensemble's own websocket channel (message type 100): run commands from
//! clients and run events from the server, as JSON with a `"type"` field.
//! The same event objects are the `data:` of the Server-Sent Events stream.

use serde::{Deserialize, Serialize};

/// Client → server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ClientMsg {
    /// Run the session's current code.
    #[serde(rename = "run.start")]
    Start,
    /// Cancel the session's active run.
    #[serde(rename = "run.cancel")]
    Cancel,
    /// Send text to the active run's standard input.
    #[serde(rename = "run.stdin")]
    Stdin {
        /// The text (a newline is not added).
        data: String,
    },
    /// Send the events of a run after `after_seq` (reconnects).
    #[serde(rename = "run.resume")]
    Resume {
        /// The run.
        run_id: String,
        /// The last output `seq` the client has.
        after_seq: u64,
    },
}

/// Server → client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ServerMsg {
    /// The run waits for a slot; `position` 1 is next.
    #[serde(rename = "run.queued")]
    Queued {
        /// The run.
        run_id: String,
        /// Place in the queue.
        position: u64,
    },
    /// The run began executing.
    #[serde(rename = "run.started")]
    Started {
        /// The run.
        run_id: String,
        /// Who started it.
        by: String,
    },
    /// A piece of the transcript.
    #[serde(rename = "run.output")]
    Output {
        /// The run.
        run_id: String,
        /// Position in the transcript, contiguous from 1.
        seq: u64,
        /// `stdout`, `stderr`, or `stdin` (what a participant typed).
        stream: String,
        /// The text.
        data: String,
    },
    /// The program is waiting to read input (a hint: it holds until the
    /// next `run.output` with stream `stdin`, or the end of the run).
    #[serde(rename = "run.input_wanted")]
    InputWanted {
        /// The run.
        run_id: String,
    },
    /// The run ended.
    #[serde(rename = "run.exited")]
    Exited {
        /// The run.
        run_id: String,
        /// How it ended (`finished`, `killed`, `cancelled`, `failed`, …).
        status: String,
        /// The program's exit code, when it exited by itself.
        exit_code: Option<i32>,
        /// In words: "Finished", "time limit (10 s) exceeded", "cancelled by alice".
        reason: String,
        /// How long it ran.
        duration_ms: u64,
    },
    /// This connection's role changed: the owner made its member a viewer
    /// or an editor. It applies at once; the client should follow (make the
    /// editor read-only, hide Run).
    #[serde(rename = "session.role")]
    Role {
        /// `viewer` or `editor`.
        role: String,
    },
    /// The owner renamed the session.
    #[serde(rename = "session.title")]
    Title {
        /// The new title.
        title: String,
    },
    /// Something was refused or went wrong.
    #[serde(rename = "error")]
    Error {
        /// Stable code, e.g. `viewer`, `rate_limited`, `server_busy`.
        code: String,
        /// What happened, for people.
        message: String,
        /// Seconds to wait before retrying, for rate limits.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        retry_after: Option<u64>,
    },
}

impl ServerMsg {
    /// An error event.
    pub fn error(code: &str, message: impl Into<String>) -> Self {
        ServerMsg::Error {
            code: code.into(),
            message: message.into(),
            retry_after: None,
        }
    }

    /// The JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_use_the_documented_shapes() {
        let m: ClientMsg = serde_json::from_str(r#"{"type":"run.stdin","data":"42\n"}"#).unwrap();
        assert_eq!(
            m,
            ClientMsg::Stdin {
                data: "42\n".into()
            }
        );
        let m: ClientMsg = serde_json::from_str(r#"{"type":"run.start"}"#).unwrap();
        assert_eq!(m, ClientMsg::Start);
        let out = ServerMsg::Output {
            run_id: "r".into(),
            seq: 3,
            stream: "stdout".into(),
            data: "hi".into(),
        };
        assert_eq!(
            out.to_json(),
            r#"{"type":"run.output","run_id":"r","seq":3,"stream":"stdout","data":"hi"}"#
        );
        assert!(serde_json::from_str::<ClientMsg>(r#"{"type":"run.fly"}"#).is_err());
    }
}
