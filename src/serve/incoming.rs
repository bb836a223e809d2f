//! Accepted-connection streams that pause after an accept error. tonic keeps
//! accepting after an error but at once, so a persistent error such as
//! EMFILE (too many open files) would spin a core; this logs and waits.

use std::io;
use std::time::Duration;

use tokio_stream::{Stream, StreamExt};

/// Pause after a failed accept, so the process can release descriptors.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Wraps `incoming`: each error is logged with `listener`, then the stream
/// waits [`ACCEPT_ERROR_PAUSE`] before yielding it.
pub fn pause_on_error<T>(
    incoming: impl Stream<Item = io::Result<T>>,
    listener: &'static str,
) -> impl Stream<Item = io::Result<T>> {
    incoming.then(move |accepted| async move {
        if let Err(err) = &accepted {
            tracing::warn!(listener, error = %err, "accept failed; pausing before the next accept");
            tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
        }
        accepted
    })
}
