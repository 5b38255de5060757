//! Timers on the current shard: [`sleep`], [`timeout`], [`now`].
//!
//! Must be used from inside a shard (glommio timers live in the shard's reactor). Timers here
//! jitter by up to a few ms (DESIGN §7): use them for deadlines, not for measurement.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::RtError;

/// Sleep for `d` on the current shard.
pub async fn sleep(d: Duration) {
    glommio::timer::sleep(d).await
}

/// Run `fut`, giving up after `d` with [`RtError::Timeout`]. The future is dropped (cancelled)
/// when the timer wins.
pub async fn timeout<T>(d: Duration, fut: impl Future<Output = T>) -> Result<T, RtError> {
    let work = async { Ok(fut.await) };
    let timer = async {
        glommio::timer::sleep(d).await;
        Err(RtError::Timeout(d))
    };
    futures_lite::future::or(work, timer).await
}

/// The current monotonic time. `Instant::now()` is a vDSO `clock_gettime(CLOCK_MONOTONIC)`
/// (~20 ns, no syscall), so this is cheap enough to call per event on the request path.
#[inline]
pub fn now() -> Instant {
    Instant::now()
}
