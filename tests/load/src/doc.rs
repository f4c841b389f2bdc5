//! Builds a document of a given size in a fresh session, for scenarios
//! that need one (idle connections on a large document, the stalled
//! reader): text appended in 32 KiB updates, each confirmed by a sync
//! round trip before the next.

use crate::api::Api;
use crate::client::{self, Joined};
use crate::Error;
use futures::SinkExt;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use yrs::updates::encoder::Encode;
use yrs::{ReadTxn, StateVector, Text, Transact};

/// Text inserted per update.
const CHUNK: usize = 32 * 1024;

/// Fills `session`'s document until its encoding reaches `kib` KiB. Returns
/// the builder's connection (keep it to keep the room loaded) and the
/// encoded size in bytes.
pub async fn build(api: &Api, session: &str, kib: usize) -> Result<(Joined, usize), Error> {
    let wait = Duration::from_secs(60);
    let mut builder = client::join(api, session, &client::EMPTY_STATE_VECTOR, wait).await?;
    let doc = yrs::Doc::new();
    let text = doc.get_or_insert_text("code");
    let line = "print('the quick brown fox jumps over the lazy dog')\n";
    let chunk: String = line.repeat(CHUNK / line.len());
    let mut size = 0;
    while size < kib * 1024 {
        let update = {
            let mut txn = doc.transact_mut();
            let end = text.len(&txn);
            text.insert(&mut txn, end, &chunk);
            txn.encode_update_v1()
        };
        let frame = yrs::sync::Message::Sync(yrs::sync::SyncMessage::Update(update));
        builder
            .ws
            .send(Message::Binary(frame.encode_v1().into()))
            .await?;
        let sv = doc.transact().state_vector().encode_v1();
        builder.ws.send(client::step1(&sv)).await?;
        client::wait_step2(&mut builder.ws, wait).await?;
        size = doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default())
            .len();
    }
    Ok((builder, size))
}
