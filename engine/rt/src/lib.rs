//! ringedge-rt: pinned glommio shards, per-shard SO_REUSEPORT listeners, timers. Filled in by issue 3.
