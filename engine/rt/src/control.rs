//! Cross-shard control: one hub broadcasts a message to every shard and collects one reply
//! from each (config swap, stats collection, drain).
//!
//! Control only: a cross-shard message costs tens to hundreds of microseconds (a parked shard
//! takes 100–200 µs to wake), so requests never travel here (DESIGN §1).
//!
//! Built on glommio `shared_channel`s, whose `connect()` is a rendezvous: the two ends must
//! connect concurrently or both wait forever (DESIGN §7). The API hides this: each shard runs
//! [`ShardControl::serve`] as a spawned task (it connects its ends first thing), and the hub
//! calls [`ControlHub::connect`] from any task on any shard; they meet whatever the order.
//! Do not await `ControlHub::connect` on a shard *before* spawning that shard's
//! `ShardControl::serve` task — that is the deadlock.
//!
//! Setup: [`control_mesh`] before [`crate::ShardSet::start`]; move the [`ControlEndpoints`]
//! (an `Arc`) into the shard closure and `take(ctx.index)` on each shard.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};

use glommio::channels::shared_channel::{self, SharedReceiver, SharedSender};

use crate::RtError;

/// Capacity of each control channel; control traffic is one message per broadcast per shard.
const CONTROL_CAPACITY: usize = 8;

/// The hub's ends, before connection. `Send`: create it on any thread, connect it on a shard.
pub struct ControlHub<M: Send + 'static, R: Send + 'static> {
    to_shards: Vec<SharedSender<M>>,
    from_shards: Vec<SharedReceiver<R>>,
}

impl<M: Send, R: Send> fmt::Debug for ControlHub<M, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ControlHub({} shards)", self.to_shards.len())
    }
}

/// One shard's ends, before connection.
pub struct ShardControl<M: Send + 'static, R: Send + 'static> {
    from_hub: SharedReceiver<M>,
    to_hub: SharedSender<R>,
}

impl<M: Send, R: Send> fmt::Debug for ShardControl<M, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ShardControl")
    }
}

/// The per-shard ends, to be taken by shard index on each shard.
pub struct ControlEndpoints<M: Send + 'static, R: Send + 'static> {
    slots: Mutex<Vec<Option<ShardControl<M, R>>>>,
}

impl<M: Send, R: Send> fmt::Debug for ControlEndpoints<M, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ControlEndpoints")
    }
}

impl<M: Send, R: Send> ControlEndpoints<M, R> {
    /// Take shard `index`'s ends (once; `None` afterwards or if out of range). The lock is only
    /// taken at start-up.
    pub fn take(&self, index: usize) -> Option<ShardControl<M, R>> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.get_mut(index).and_then(Option::take)
    }
}

/// Create the channels for `shards` shards: a hub and the per-shard endpoints.
pub fn control_mesh<M: Send + 'static, R: Send + 'static>(
    shards: usize,
) -> (ControlHub<M, R>, Arc<ControlEndpoints<M, R>>) {
    let mut to_shards = Vec::with_capacity(shards);
    let mut from_shards = Vec::with_capacity(shards);
    let mut slots = Vec::with_capacity(shards);
    for _ in 0..shards {
        let (tx, rx) = shared_channel::new_bounded(CONTROL_CAPACITY);
        let (rtx, rrx) = shared_channel::new_bounded(CONTROL_CAPACITY);
        to_shards.push(tx);
        from_shards.push(rrx);
        slots.push(Some(ShardControl {
            from_hub: rx,
            to_hub: rtx,
        }));
    }
    (
        ControlHub {
            to_shards,
            from_shards,
        },
        Arc::new(ControlEndpoints {
            slots: Mutex::new(slots),
        }),
    )
}

impl<M: Send + 'static, R: Send + 'static> ShardControl<M, R> {
    /// Connect this shard's ends and answer every message with `handler(msg).await` until the
    /// hub is dropped. Spawn it as a task at shard start (see the module docs).
    pub async fn serve<H, F>(self, mut handler: H)
    where
        H: FnMut(M) -> F,
        F: Future<Output = R>,
    {
        let rx = self.from_hub.connect().await;
        let tx = self.to_hub.connect().await;
        while let Some(msg) = rx.recv().await {
            let reply = handler(msg).await;
            if tx.send(reply).await.is_err() {
                break;
            }
        }
    }
}

impl<M: Send + 'static, R: Send + 'static> ControlHub<M, R> {
    /// Connect the hub's ends; completes once every shard's [`ShardControl::serve`] runs.
    /// Call from a task on a shard.
    pub async fn connect(self) -> ConnectedHub<M, R> {
        let mut to = Vec::with_capacity(self.to_shards.len());
        let mut from = Vec::with_capacity(self.from_shards.len());
        // Same order as ShardControl::serve (hub→shard, then shard→hub) for each shard.
        for (tx, rx) in self.to_shards.into_iter().zip(self.from_shards) {
            to.push(tx.connect().await);
            from.push(rx.connect().await);
        }
        ConnectedHub { to, from }
    }
}

/// A connected hub: broadcast and collect.
pub struct ConnectedHub<M: Send + 'static, R: Send + 'static> {
    to: Vec<shared_channel::ConnectedSender<M>>,
    from: Vec<shared_channel::ConnectedReceiver<R>>,
}

impl<M: Send, R: Send> fmt::Debug for ConnectedHub<M, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnectedHub({} shards)", self.to.len())
    }
}

impl<M: Send + Clone + 'static, R: Send + 'static> ConnectedHub<M, R> {
    /// Send `msg` to every shard, then collect one reply from each, by shard index.
    /// `&mut self` keeps broadcasts sequential so replies pair with their message.
    pub async fn broadcast(&mut self, msg: M) -> Result<Vec<R>, RtError> {
        for tx in &self.to {
            tx.send(msg.clone())
                .await
                .map_err(|_| RtError::ControlClosed)?;
        }
        let mut replies = Vec::with_capacity(self.from.len());
        for rx in &self.from {
            replies.push(rx.recv().await.ok_or(RtError::ControlClosed)?);
        }
        Ok(replies)
    }

    /// Number of shards reached by a broadcast.
    pub fn shards(&self) -> usize {
        self.to.len()
    }
}
