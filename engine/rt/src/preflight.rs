//! Start-up checks run before any shard is spawned, so that a host that cannot run ringedge
//! fails with one clear message naming the fix instead of a glommio panic deep in a thread.
//!
//! Must not: change any limit itself (raising RLIMIT_MEMLOCK is the operator's decision).
//! Invariant: the decision logic ([`check_memlock`], [`interpret_io_uring_probe`]) is pure so
//! it is unit-tested with injected values; only the tiny readers touch the OS.

use crate::RtError;

/// glommio refuses to build a reactor below this much locked memory (glommio 0.9
/// `sys/uring.rs`, `MIN_MEMLOCK_LIMIT`).
pub const GLOMMIO_MIN_MEMLOCK: u64 = 512 * 1024;

/// Estimated locked memory one shard needs for `io_memory` bytes of io_uring buffers.
///
/// glommio registers its `io_memory` slab with each of its three rings (main, latency, poll);
/// on kernels that still charge ring pages to RLIMIT_MEMLOCK each ring also costs a few pages.
/// We count the slab three times plus 64 KiB of ring pages: conservative on new kernels,
/// adequate on old ones.
pub fn memlock_per_shard(io_memory: usize) -> u64 {
    let slab = (io_memory.max(64 * 1024) as u64).div_ceil(4096) * 4096;
    slab * 3 + 64 * 1024
}

/// Decide whether a memlock limit (`current`, `None` = unlimited) fits `shards` shards with
/// `io_memory` bytes each. Pure: tested with injected values.
pub fn check_memlock(current: Option<u64>, shards: usize, io_memory: usize) -> Result<(), RtError> {
    let Some(current) = current else {
        return Ok(());
    };
    let required = (shards as u64)
        .saturating_mul(memlock_per_shard(io_memory))
        .max(GLOMMIO_MIN_MEMLOCK);
    if current < required {
        return Err(RtError::MemlockTooLow { current, required });
    }
    Ok(())
}

/// The soft RLIMIT_MEMLOCK of this process in bytes, `None` when unlimited.
pub fn read_memlock_limit() -> Result<Option<u64>, RtError> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes into the `rlimit` struct we own and pass by valid pointer.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) };
    if rc != 0 {
        return Err(RtError::Io(std::io::Error::last_os_error()));
    }
    if lim.rlim_cur == libc::RLIM_INFINITY {
        Ok(None)
    } else {
        Ok(Some(lim.rlim_cur))
    }
}

/// Interpret the sysctl `kernel.io_uring_disabled` (absent on kernels before 6.6, `None`) and
/// the result of a probing `io_uring_setup` (`Ok` or the errno). Pure: tested with injected
/// values.
pub fn interpret_io_uring_probe(
    sysctl: Option<u32>,
    probe: Result<(), i32>,
) -> Result<(), RtError> {
    match probe {
        Ok(()) => Ok(()),
        Err(errno) => {
            let why = match (sysctl, errno) {
                (Some(2), _) => {
                    "the sysctl kernel.io_uring_disabled is 2 (disabled for all)".to_string()
                }
                (Some(1), libc::EPERM) => {
                    "the sysctl kernel.io_uring_disabled is 1 and this process is not in \
                     kernel.io_uring_group"
                        .to_string()
                }
                (_, libc::ENOSYS) => {
                    "io_uring_setup returned ENOSYS: the kernel lacks io_uring or a seccomp \
                     profile (e.g. Docker's default) blocks it"
                        .to_string()
                }
                (_, libc::EPERM) => {
                    "io_uring_setup returned EPERM: blocked by a security policy (seccomp/LSM)"
                        .to_string()
                }
                (_, e) => format!(
                    "io_uring_setup failed: {}",
                    std::io::Error::from_raw_os_error(e)
                ),
            };
            Err(RtError::IoUringUnavailable { detail: why })
        }
    }
}

/// Read `/proc/sys/kernel/io_uring_disabled` (`None` if absent or unreadable).
pub fn read_io_uring_sysctl() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// Try `io_uring_setup` with a 1-entry ring and close it again.
pub fn probe_io_uring() -> Result<(), i32> {
    // struct io_uring_params is 120 bytes in every kernel ABI so far; zeroed means "defaults".
    let mut params = [0u8; 120];
    // SAFETY: io_uring_setup(entries, params*) reads and writes at most
    // sizeof(struct io_uring_params) = 120 bytes through the pointer, which points to our
    // 120-byte zeroed buffer that lives across the call.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 1u32, params.as_mut_ptr()) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
    }
    // SAFETY: `fd` is a file descriptor the kernel just returned to us and nobody else owns.
    unsafe { libc::close(fd as libc::c_int) };
    Ok(())
}

/// Run both checks for `shards` shards of `io_memory` bytes each.
pub fn check_host(shards: usize, io_memory: usize) -> Result<(), RtError> {
    interpret_io_uring_probe(read_io_uring_sysctl(), probe_io_uring())?;
    check_memlock(read_memlock_limit()?, shards, io_memory)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memlock_unlimited_passes() {
        assert!(check_memlock(None, 64, 64 * 1024).is_ok());
    }

    #[test]
    fn memlock_8mib_fits_small_shards() {
        // 8 MiB / (3*64 KiB + 64 KiB) = 32 shards.
        assert!(check_memlock(Some(8 << 20), 32, 64 * 1024).is_ok());
        let e = check_memlock(Some(8 << 20), 33, 64 * 1024).unwrap_err();
        match e {
            RtError::MemlockTooLow { current, required } => {
                assert_eq!(current, 8 << 20);
                assert_eq!(required, 33 * 256 * 1024);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn memlock_below_glommio_minimum_fails_even_for_one_shard() {
        let e = check_memlock(Some(256 * 1024), 1, 64 * 1024).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("ulimit -l"), "{msg}");
        assert!(msg.contains("LimitMEMLOCK="), "{msg}");
        assert!(
            matches!(e, RtError::MemlockTooLow { required, .. } if required == GLOMMIO_MIN_MEMLOCK)
        );
    }

    #[test]
    fn memlock_large_io_memory_counts() {
        assert_eq!(memlock_per_shard(1 << 20), 3 * (1 << 20) + 65536);
        // io_memory below 64 KiB is raised to 64 KiB by glommio.
        assert_eq!(memlock_per_shard(0), memlock_per_shard(64 * 1024));
    }

    #[test]
    fn io_uring_probe_interpretation() {
        assert!(interpret_io_uring_probe(Some(0), Ok(())).is_ok());
        assert!(interpret_io_uring_probe(None, Ok(())).is_ok());
        let e = interpret_io_uring_probe(Some(2), Err(libc::EPERM)).unwrap_err();
        assert!(e.to_string().contains("io_uring_disabled is 2"), "{e}");
        let e = interpret_io_uring_probe(None, Err(libc::ENOSYS)).unwrap_err();
        assert!(e.to_string().contains("seccomp"), "{e}");
        let e = interpret_io_uring_probe(Some(1), Err(libc::EPERM)).unwrap_err();
        assert!(e.to_string().contains("io_uring_group"), "{e}");
    }

    #[test]
    fn this_host_passes() {
        // The CI/dev hosts have io_uring enabled and an 8 MiB memlock limit.
        check_host(2, 64 * 1024).unwrap();
    }
}
