//! Shards: one glommio `LocalExecutor` per CPU, pinned with `Placement::Fixed`.
//!
//! CPUs come from the process affinity mask (`sched_getaffinity` via `core_affinity`), never
//! from the machine's online list, so `taskset`/cgroup cpusets are honoured (DESIGN §7).
//! `start` returns only once every shard's executor is running (or with the first start error),
//! so a broken host fails at start-up, not later.

use std::future::Future;
use std::sync::mpsc;
use std::time::Duration;

use glommio::{LocalExecutorBuilder, Placement};

use crate::RtError;

/// Which CPUs get a shard.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CpuSelection {
    /// One shard per CPU in the process affinity mask (the default).
    #[default]
    AllAllowed,
    /// The first `n` CPUs of the affinity mask; error if fewer are allowed.
    Count(usize),
    /// Exactly these CPU ids; each must be in the affinity mask.
    List(Vec<usize>),
}

/// Shard configuration. Every field has a safe default ([`ShardsConfig::default`]).
#[derive(Debug, Clone)]
pub struct ShardsConfig {
    /// Which CPUs run a shard. Default: all CPUs the process may run on.
    pub cpus: CpuSelection,
    /// io_uring buffer memory per shard in bytes. Socket I/O does not use it (files only), so
    /// the default is glommio's minimum, 64 KiB, which lets ~32 shards fit an 8 MiB memlock
    /// limit.
    pub io_memory: usize,
    /// Busy-spin this long before parking an idle shard: trades CPU for the 100–200 µs it takes
    /// to wake a parked shard. Default: `None` (park at once).
    pub spin_before_park: Option<Duration>,
    /// Thread name prefix; shard `i` is named `{name}-{i}`. Default `"ringedge-shard"`.
    pub name: String,
    /// Run [`crate::preflight::check_host`] (io_uring and memlock) before starting. Default
    /// `true`.
    pub check_host: bool,
}

impl Default for ShardsConfig {
    fn default() -> Self {
        ShardsConfig {
            cpus: CpuSelection::AllAllowed,
            io_memory: 64 * 1024,
            spin_before_park: None,
            name: "ringedge-shard".to_string(),
            check_host: true,
        }
    }
}

/// What a shard knows about itself. Cheap to copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardCtx {
    /// Index of this shard, `0..shards`.
    pub index: usize,
    /// The CPU this shard is pinned to.
    pub cpu: usize,
    /// Total number of shards in the set.
    pub shards: usize,
}

/// The CPUs the process may run on (its affinity mask), sorted.
pub fn allowed_cpus() -> Result<Vec<usize>, RtError> {
    let ids = core_affinity::get_core_ids().ok_or_else(|| {
        RtError::InvalidConfig("cannot read the process CPU affinity mask".to_string())
    })?;
    let mut cpus: Vec<usize> = ids.into_iter().map(|c| c.id).collect();
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// Resolve a [`CpuSelection`] against the allowed CPUs. Pure: unit-tested.
pub(crate) fn resolve_cpus(sel: &CpuSelection, allowed: &[usize]) -> Result<Vec<usize>, RtError> {
    if allowed.is_empty() {
        return Err(RtError::InvalidConfig(
            "the process affinity mask allows no CPU".to_string(),
        ));
    }
    match sel {
        CpuSelection::AllAllowed => Ok(allowed.to_vec()),
        CpuSelection::Count(0) => Err(RtError::InvalidConfig(
            "shards = 0: at least one shard is needed".to_string(),
        )),
        CpuSelection::Count(n) if *n > allowed.len() => Err(RtError::InvalidConfig(format!(
            "{n} shards requested but the process may run on only {} CPUs ({allowed:?}); \
             use at most {} or widen the affinity mask",
            allowed.len(),
            allowed.len()
        ))),
        CpuSelection::Count(n) => Ok(allowed[..*n].to_vec()),
        CpuSelection::List(list) => {
            if list.is_empty() {
                return Err(RtError::InvalidConfig("empty CPU list".to_string()));
            }
            let mut seen = Vec::with_capacity(list.len());
            for &c in list {
                if !allowed.contains(&c) {
                    return Err(RtError::InvalidConfig(format!(
                        "CPU {c} is not in the process affinity mask {allowed:?}"
                    )));
                }
                if seen.contains(&c) {
                    return Err(RtError::InvalidConfig(format!("CPU {c} listed twice")));
                }
                seen.push(c);
            }
            Ok(seen)
        }
    }
}

/// A running set of shards. Join it to wait for every shard's future to finish.
#[derive(Debug)]
pub struct ShardSet<T: Send + 'static> {
    handles: Vec<glommio::ExecutorJoinHandle<Option<T>>>,
    cpus: Vec<usize>,
}

impl<T: Send + 'static> ShardSet<T> {
    /// Start one shard per selected CPU and run `f(ctx)` on each. Returns once every shard's
    /// executor is up (after its first timer has been warmed), or the first start-up error.
    ///
    /// `f` is called once per shard, on the shard's thread; its future may hold `!Send` state.
    pub fn start<G, F>(config: ShardsConfig, f: G) -> Result<ShardSet<T>, RtError>
    where
        G: Fn(ShardCtx) -> F + Send + Sync + Clone + 'static,
        F: Future<Output = T> + 'static,
    {
        let cpus = resolve_cpus(&config.cpus, &allowed_cpus()?)?;
        if config.check_host {
            crate::preflight::check_host(cpus.len(), config.io_memory)?;
        }
        let shards = cpus.len();
        let (ready_tx, ready_rx) = mpsc::channel::<usize>();
        let mut handles = Vec::with_capacity(shards);
        let mut go = Vec::with_capacity(shards);
        for (index, &cpu) in cpus.iter().enumerate() {
            let mut builder = LocalExecutorBuilder::new(Placement::Fixed(cpu))
                .io_memory(config.io_memory)
                .name(&format!("{}-{index}", config.name));
            if let Some(spin) = config.spin_before_park {
                builder = builder.spin_before_park(spin);
            }
            let f = f.clone();
            let ready = ready_tx.clone();
            let (go_tx, go_rx) = mpsc::channel::<bool>();
            go.push(go_tx);
            let ctx = ShardCtx { index, cpu, shards };
            let spawned = builder.spawn(move || async move {
                // The first timer on a shard can take several ms (DESIGN §7): pay it now.
                glommio::timer::sleep(Duration::from_micros(1)).await;
                let _ = ready.send(index);
                drop(ready);
                // Wait (blocking is fine: nothing else runs on this shard yet) until every
                // shard is up, so a failed start never leaves half the shards serving.
                if go_rx.recv() == Ok(true) {
                    Some(f(ctx).await)
                } else {
                    None
                }
            });
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    abort(go, handles);
                    return Err(RtError::ShardStart {
                        shard: index,
                        detail: e.to_string(),
                    });
                }
            }
        }
        drop(ready_tx);
        let mut up = vec![false; shards];
        for _ in 0..shards {
            match ready_rx.recv() {
                Ok(i) => up[i] = true,
                Err(_) => break,
            }
        }
        if let Some(failed) = up.iter().position(|u| !u) {
            // A shard thread ended before reporting ready: its executor failed to build
            // (memlock, io_uring, CPU). Stop the others and report that shard's error.
            let errors = abort(go, handles);
            let detail = errors
                .into_iter()
                .find(|(i, _)| *i == failed)
                .map(|(_, d)| d)
                .unwrap_or_else(|| "shard ended before it was ready".to_string());
            return Err(RtError::ShardStart {
                shard: failed,
                detail,
            });
        }
        for g in &go {
            let _ = g.send(true);
        }
        Ok(ShardSet { handles, cpus })
    }

    /// The CPU of each shard, by shard index.
    pub fn cpus(&self) -> &[usize] {
        &self.cpus
    }

    /// Wait for every shard's future to finish; results by shard index.
    pub fn join(self) -> Result<Vec<T>, RtError> {
        let mut out = Vec::with_capacity(self.handles.len());
        for (shard, h) in self.handles.into_iter().enumerate() {
            match h.join() {
                Ok(Some(v)) => out.push(v),
                Ok(None) => {
                    return Err(RtError::ShardFailed {
                        shard,
                        detail: "shard was told not to run".to_string(),
                    })
                }
                Err(e) => {
                    return Err(RtError::ShardFailed {
                        shard,
                        detail: e.to_string(),
                    })
                }
            }
        }
        Ok(out)
    }
}

/// Tell every started shard not to run, join them, and return (index, error) of those that
/// failed.
fn abort<T: Send + 'static>(
    go: Vec<mpsc::Sender<bool>>,
    handles: Vec<glommio::ExecutorJoinHandle<Option<T>>>,
) -> Vec<(usize, String)> {
    for g in &go {
        let _ = g.send(false);
    }
    drop(go);
    handles
        .into_iter()
        .enumerate()
        .filter_map(|(i, h)| h.join().err().map(|e| (i, e.to_string())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_selection() {
        let allowed = [0, 1, 3];
        assert_eq!(
            resolve_cpus(&CpuSelection::AllAllowed, &allowed).unwrap(),
            vec![0, 1, 3]
        );
        assert_eq!(
            resolve_cpus(&CpuSelection::Count(2), &allowed).unwrap(),
            vec![0, 1]
        );
        assert!(resolve_cpus(&CpuSelection::Count(4), &allowed).is_err());
        assert!(resolve_cpus(&CpuSelection::Count(0), &allowed).is_err());
        assert_eq!(
            resolve_cpus(&CpuSelection::List(vec![3, 0]), &allowed).unwrap(),
            vec![3, 0]
        );
        let e = resolve_cpus(&CpuSelection::List(vec![2]), &allowed).unwrap_err();
        assert!(e.to_string().contains("affinity mask"), "{e}");
        assert!(resolve_cpus(&CpuSelection::List(vec![1, 1]), &allowed).is_err());
        assert!(resolve_cpus(&CpuSelection::AllAllowed, &[]).is_err());
    }

    #[test]
    fn shards_start_pinned_and_report_cpu() {
        let allowed = allowed_cpus().unwrap();
        let set = ShardSet::start(ShardsConfig::default(), |ctx: ShardCtx| async move {
            // sched_getcpu tells where this thread actually runs.
            // SAFETY: sched_getcpu has no preconditions.
            let running_on = unsafe { libc::sched_getcpu() };
            (ctx, running_on as usize)
        })
        .unwrap();
        assert_eq!(set.cpus(), &allowed[..]);
        let results = set.join().unwrap();
        assert_eq!(results.len(), allowed.len());
        for (i, (ctx, running_on)) in results.into_iter().enumerate() {
            assert_eq!(ctx.index, i);
            assert_eq!(ctx.shards, allowed.len());
            assert_eq!(ctx.cpu, allowed[i]);
            assert_eq!(running_on, allowed[i], "shard {i} not pinned");
        }
    }

    #[test]
    fn too_many_shards_is_a_clear_error() {
        let n = allowed_cpus().unwrap().len() + 1;
        let cfg = ShardsConfig {
            cpus: CpuSelection::Count(n),
            ..ShardsConfig::default()
        };
        let e = ShardSet::start(cfg, |_ctx| async {}).unwrap_err();
        assert!(matches!(e, RtError::InvalidConfig(_)), "{e}");
    }
}
