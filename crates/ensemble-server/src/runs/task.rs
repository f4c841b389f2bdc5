//! One run's life: wait for a slot, execute in the sandbox, stream output
//! coalesced into frames every [`COALESCE`], and record how it ended.
//!
//! Output is forwarded as it arrives (a prompt without a newline shows at
//! once), merged per stream for at most [`COALESCE`] or [`MAX_FRAME`] bytes,
//! so a chatty program makes tens of frames a second, not thousands.

use super::{ActiveRun, RunManager};
use ensemble_core::model::{RunEnd, RunStatus};
use ensemble_core::time::now_ms;
use ensemble_protocol::run::ServerMsg;
use ensemble_sandbox::{OutputStream, RunEvent, RunRequest, Stdin};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long output is gathered before it is sent.
pub const COALESCE: Duration = Duration::from_millis(15);
/// Most bytes in one output frame.
pub const MAX_FRAME: usize = 32 * 1024;

fn stream_name(s: OutputStream) -> &'static str {
    match s {
        OutputStream::Stdout => "stdout",
        OutputStream::Stderr => "stderr",
    }
}

struct Pending {
    parts: Vec<(&'static str, String)>,
    bytes: usize,
}

impl Pending {
    fn push(&mut self, stream: &'static str, text: &str) {
        self.bytes += text.len();
        match self.parts.last_mut() {
            Some((s, buf)) if *s == stream => buf.push_str(text),
            _ => self.parts.push((stream, text.to_owned())),
        }
    }
}

fn emit(mgr: &RunManager, run: &ActiveRun, pending: &mut Pending) {
    for (stream, data) in pending.parts.drain(..) {
        let frame = run.record(ServerMsg::Output {
            run_id: run.id.to_string(),
            seq: 0,
            stream: stream.into(),
            data,
        });
        mgr.inner.hub.run_event(&run.session, run.id.clone(), frame);
    }
    pending.bytes = 0;
}

/// Ends a run that never started (cancelled while queued, or refused).
async fn end_early(mgr: &RunManager, run: &Arc<ActiveRun>, status: RunStatus, reason: String) {
    finish(mgr, run, status, None, reason, None, 0).await;
}

async fn finish(
    mgr: &RunManager,
    run: &Arc<ActiveRun>,
    status: RunStatus,
    exit_code: Option<i32>,
    reason: String,
    started_at: Option<i64>,
    duration_ms: u64,
) {
    let frame = run.record(ServerMsg::Exited {
        run_id: run.id.to_string(),
        status: status.as_str().into(),
        exit_code,
        reason: reason.clone(),
        duration_ms,
    });
    mgr.inner.hub.run_event(&run.session, run.id.clone(), frame);
    mgr.release(run);
    if run.stored {
        let (output, truncated) = run.transcript();
        let end = RunEnd {
            status,
            exit_code,
            reason: Some(reason),
            started_at,
            finished_at: now_ms(),
            duration_ms: Some(duration_ms),
            output,
            truncated,
        };
        if let Err(e) = mgr.inner.store.finish_run(&run.id, &end).await {
            tracing::warn!(run = %run.id, error = %e, "could not store how the run ended");
        }
    }
    mgr.announce_positions();
}

/// Runs `run` to its end.
pub(super) async fn execute(mgr: RunManager, run: Arc<ActiveRun>, code: String) {
    let span = tracing::info_span!("run", run = %run.id, session = %run.session);
    let _enter = span.enter();
    drop(_enter);
    let slots = mgr.inner.slots.clone();
    let permit = tokio::select! {
        p = slots.acquire_owned() => p.ok(),
        () = run.cancel.cancelled() => None,
    };
    mgr.dequeue(&run);
    mgr.announce_positions();
    let Some(_permit) = permit else {
        let by = run
            .cancelled_by
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_default();
        end_early(
            &mgr,
            &run,
            RunStatus::Cancelled,
            format!("cancelled by {by}"),
        )
        .await;
        return;
    };

    let started_at = now_ms();
    if run.stored {
        if let Err(e) = mgr.inner.store.mark_run_started(&run.id, started_at).await {
            tracing::warn!(error = %e, "could not mark the run started");
        }
    }
    let frame = run.record(ServerMsg::Started {
        run_id: run.id.to_string(),
        by: run.by.clone(),
    });
    mgr.inner.hub.run_event(&run.session, run.id.clone(), frame);

    let request = RunRequest {
        code,
        limits: mgr.inner.config.limits.clone(),
        stdin: Stdin::Interactive,
    };
    let mut handle = match mgr.inner.sandbox.start(request).await {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "the sandbox could not start the run");
            finish(
                &mgr,
                &run,
                RunStatus::Failed,
                None,
                format!("could not start: {e}"),
                Some(started_at),
                0,
            )
            .await;
            return;
        }
    };
    let control = handle.control();
    *run.stdin.lock().unwrap_or_else(|p| p.into_inner()) = Some(control.clone());

    let clock = Instant::now();
    let mut pending = Pending {
        parts: Vec::new(),
        bytes: 0,
    };
    let mut tick = tokio::time::interval(COALESCE);
    let mut cancel_sent = false;
    let info = loop {
        tokio::select! {
            ev = handle.next_event() => match ev {
                Some(RunEvent::Output(chunk)) => {
                    pending.push(stream_name(chunk.stream), &chunk.text());
                    if pending.bytes >= MAX_FRAME {
                        emit(&mgr, &run, &mut pending);
                    }
                }
                Some(RunEvent::InputWanted) => {
                    // After the prompt that came before it.
                    emit(&mgr, &run, &mut pending);
                    let frame = run.record(ServerMsg::InputWanted { run_id: run.id.to_string() });
                    mgr.inner.hub.run_event(&run.session, run.id.clone(), frame);
                }
                Some(RunEvent::Exited(info)) => break Some(info),
                None => break None,
            },
            _ = tick.tick() => {
                if pending.bytes > 0 {
                    emit(&mgr, &run, &mut pending);
                }
            }
            () = run.cancel.cancelled(), if !cancel_sent => {
                cancel_sent = true;
                let by = run.cancelled_by.lock().unwrap_or_else(|p| p.into_inner()).clone().unwrap_or_default();
                control.cancel_by(&by);
            }
        }
    };
    emit(&mgr, &run, &mut pending);
    *run.stdin.lock().unwrap_or_else(|p| p.into_inner()) = None;
    let Some(info) = info else {
        let ms = clock.elapsed().as_millis() as u64;
        finish(
            &mgr,
            &run,
            RunStatus::Failed,
            None,
            "the sandbox stopped without a result".into(),
            Some(started_at),
            ms,
        )
        .await;
        return;
    };
    use ensemble_sandbox::RunStatus as S;
    let status = match info.status {
        S::Ok | S::Error => RunStatus::Finished,
        S::Timeout | S::Memory | S::OutputLimit | S::Killed => RunStatus::Killed,
        S::Cancelled => RunStatus::Cancelled,
        S::SandboxError => RunStatus::Failed,
    };
    tracing::info!(status = status.as_str(), reason = %info.reason, ms = info.duration_ms, "run ended");
    finish(
        &mgr,
        &run,
        status,
        info.exit_code,
        info.reason,
        Some(started_at),
        info.duration_ms,
    )
    .await;
}
