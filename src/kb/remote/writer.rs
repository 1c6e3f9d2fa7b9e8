//! The user knowledge base's single writer: answers fetched by the network
//! side are queued here and written in batches (one transaction per batch),
//! so fetching never waits for the disk.

use std::sync::Arc;

use crate::index::http::CacheHeaders;
use crate::kb::store::{Store, StoredMetadata};
use crate::python::Version;

/// One write for the user knowledge base.
pub(super) enum Write {
    /// A project page (or its absence).
    Page {
        index: Arc<str>,
        name: String,
        /// The stored form ([`Store::page_blob`]); `None` for a 404.
        blob: Option<(Vec<u8>, i64)>,
        cache: CacheHeaders,
    },
    /// A page revalidated unchanged.
    Touch {
        index: Arc<str>,
        name: String,
        cache: CacheHeaders,
    },
    /// A release's metadata.
    Meta {
        index: Arc<str>,
        name: String,
        version: Version,
        file: Option<String>,
        metadata: StoredMetadata,
    },
    /// Answer once everything queued before is written.
    Barrier(std::sync::mpsc::Sender<()>),
    /// Stop after what is queued.
    Close,
}

/// Write what arrives on `rx` until [`Write::Close`] or the sender is
/// gone, up to 256 writes per transaction.
pub(super) fn write_loop(store: &Store, rx: &std::sync::mpsc::Receiver<Write>) {
    loop {
        let first = match rx.recv() {
            Ok(Write::Close) | Err(_) => return,
            Ok(w) => w,
        };
        let mut batch = vec![first];
        let mut close = false;
        while batch.len() < 256 {
            match rx.try_recv() {
                Ok(Write::Close) => {
                    close = true;
                    break;
                }
                Ok(w) => {
                    let barrier = matches!(w, Write::Barrier(_));
                    batch.push(w);
                    if barrier {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        let written = store.batch(|s| {
            for w in &batch {
                match w {
                    Write::Page {
                        index,
                        name,
                        blob,
                        cache,
                    } => s.put_page_blob(
                        index,
                        name,
                        blob.as_ref().map(|(d, f)| (d.as_slice(), *f)),
                        cache,
                    )?,
                    Write::Touch { index, name, cache } => s.touch_page(index, name, cache)?,
                    Write::Meta {
                        index,
                        name,
                        version,
                        file,
                        metadata,
                    } => s.put_metadata(index, name, version, file.as_deref(), metadata)?,
                    Write::Barrier(_) | Write::Close => {}
                }
            }
            Ok(())
        });
        if let Err(e) = written {
            tracing::warn!("the user knowledge base was not updated: {e}");
        }
        for w in &batch {
            if let Write::Barrier(done) = w {
                let _ = done.send(());
            }
        }
        if close {
            return;
        }
    }
}
