//! A run in progress (or just ended): its events so far, kept in a bounded
//! buffer for late joiners, reconnects and SSE watchers, and a broadcast
//! channel for live SSE watchers.
//!
//! Every event is kept as its JSON text; output events carry a `seq`. The
//! buffer holds at most [`KEEP_BYTES`] of output: past that the oldest
//! output is dropped and a replay starts with a notice saying so (the
//! sandbox's own output cap normally ends a run well before).

use ensemble_core::ids::{RunId, SessionId};
use ensemble_protocol::run::ServerMsg;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// Output kept in memory per run for replays.
pub const KEEP_BYTES: usize = 2 << 20;
/// Events buffered per live SSE watcher before it counts as lagging.
pub const WATCHER_QUEUE: usize = 1024;

/// An event as sent: its output seq (if output) and JSON text.
#[derive(Debug, Clone)]
pub struct RunFrame {
    /// The output `seq`, for output events.
    pub seq: Option<u64>,
    /// The event's JSON.
    pub json: Arc<str>,
}

#[derive(Default)]
struct Log {
    queued: Option<Arc<str>>,
    started: Option<Arc<str>>,
    output: VecDeque<(u64, Arc<str>)>,
    output_bytes: usize,
    dropped: u64,
    exited: Option<Arc<str>>,
    /// The program waits for input (until input is recorded).
    input_wanted: Option<Arc<str>>,
    last_seq: u64,
}

/// One active run.
pub struct ActiveRun {
    /// Its id.
    pub id: RunId,
    /// Its session.
    pub session: SessionId,
    /// Who started it (display name).
    pub by: String,
    /// The quota key of who started it.
    pub owner_key: String,
    /// Whether it is stored (registered authors only).
    pub stored: bool,
    log: Mutex<Log>,
    live: broadcast::Sender<RunFrame>,
    /// Cancelled to stop the run, whether queued or running.
    pub cancel: CancellationToken,
    /// Who cancelled it, for the reason.
    pub cancelled_by: Mutex<Option<String>>,
    /// Standard input for the running program.
    pub stdin: Mutex<Option<ensemble_sandbox::RunControl>>,
}

impl ActiveRun {
    /// A new run record in memory.
    pub fn new(
        id: RunId,
        session: SessionId,
        by: String,
        owner_key: String,
        stored: bool,
    ) -> Arc<Self> {
        Arc::new(Self {
            id,
            session,
            by,
            owner_key,
            stored,
            log: Mutex::new(Log::default()),
            live: broadcast::channel(WATCHER_QUEUE).0,
            cancel: CancellationToken::new(),
            cancelled_by: Mutex::new(None),
            stdin: Mutex::new(None),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records an event and returns it as a frame (output gets the next seq).
    pub fn record(&self, msg: ServerMsg) -> RunFrame {
        let mut log = self.lock();
        let (msg, seq) = match msg {
            ServerMsg::Output {
                run_id,
                stream,
                data,
                ..
            } => {
                log.last_seq += 1;
                let seq = log.last_seq;
                (
                    ServerMsg::Output {
                        run_id,
                        seq,
                        stream,
                        data,
                    },
                    Some(seq),
                )
            }
            other => (other, None),
        };
        let json: Arc<str> = Arc::from(msg.to_json());
        match &msg {
            ServerMsg::Queued { .. } => log.queued = Some(json.clone()),
            ServerMsg::Started { .. } => log.started = Some(json.clone()),
            ServerMsg::Exited { .. } => log.exited = Some(json.clone()),
            ServerMsg::InputWanted { .. } => log.input_wanted = Some(json.clone()),
            ServerMsg::Output {
                seq, data, stream, ..
            } => {
                if stream == "stdin" {
                    log.input_wanted = None;
                }
                log.output_bytes += data.len();
                log.output.push_back((*seq, json.clone()));
                while log.output_bytes > KEEP_BYTES {
                    let Some((_, old)) = log.output.pop_front() else {
                        break;
                    };
                    log.output_bytes = log.output_bytes.saturating_sub(old.len());
                    log.dropped += 1;
                }
            }
            ServerMsg::Error { .. } | ServerMsg::Role { .. } | ServerMsg::Title { .. } => {}
        }
        let frame = RunFrame { seq, json };
        let _ = self.live.send(frame.clone());
        frame
    }

    /// Everything after output `after_seq`: the state events, a notice if
    /// older output is gone, the output, and the end if it ended (else the
    /// input hint, if the program waits for input). Returns
    /// the frames and the last seq they cover.
    pub fn replay(&self, after_seq: u64) -> (Vec<RunFrame>, u64) {
        let log = self.lock();
        let mut frames = Vec::new();
        let state = if log.started.is_some() {
            &log.started
        } else {
            &log.queued
        };
        if let Some(s) = state {
            frames.push(RunFrame {
                seq: None,
                json: s.clone(),
            });
        }
        let first_kept = log.output.front().map_or(log.last_seq + 1, |(s, _)| *s);
        if log.dropped > 0 && after_seq + 1 < first_kept {
            let notice = ServerMsg::error(
                "output_skipped",
                format!(
                    "output {}–{} is no longer kept; what follows is the rest",
                    after_seq + 1,
                    first_kept - 1
                ),
            );
            frames.push(RunFrame {
                seq: None,
                json: Arc::from(notice.to_json()),
            });
        }
        for (seq, json) in log.output.iter().filter(|(s, _)| *s > after_seq) {
            frames.push(RunFrame {
                seq: Some(*seq),
                json: json.clone(),
            });
        }
        if let Some(e) = log.exited.as_ref().or(log.input_wanted.as_ref()) {
            frames.push(RunFrame {
                seq: None,
                json: e.clone(),
            });
        }
        (frames, log.last_seq)
    }

    /// Replay plus a live subscription, taken atomically (no gap, and
    /// duplicates are recognisable by seq).
    pub fn watch(&self) -> (Vec<RunFrame>, u64, broadcast::Receiver<RunFrame>) {
        let rx = self.live.subscribe();
        let (frames, last) = self.replay(0);
        (frames, last, rx)
    }

    /// Whether the run has ended.
    pub fn ended(&self) -> bool {
        self.lock().exited.is_some()
    }

    /// The output kept, for the stored record: (seq, stream, text) and
    /// whether some was dropped.
    pub fn transcript(&self) -> (Vec<ensemble_core::model::OutputChunk>, bool) {
        let log = self.lock();
        let chunks = log
            .output
            .iter()
            .filter_map(|(_, json)| match serde_json::from_str::<ServerMsg>(json) {
                Ok(ServerMsg::Output {
                    seq, stream, data, ..
                }) => Some(ensemble_core::model::OutputChunk {
                    seq,
                    stream: match stream.as_str() {
                        "stderr" => ensemble_core::model::Stream::Stderr,
                        "stdin" => ensemble_core::model::Stream::Stdin,
                        _ => ensemble_core::model::Stream::Stdout,
                    },
                    data,
                }),
                _ => None,
            })
            .collect();
        (chunks, log.dropped > 0)
    }
}
