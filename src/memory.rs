//! The allocator's free memory handed back to the system.

/// Below this much free memory the allocator keeps it for reuse ([`hand_back`]).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const KEPT_FREE: usize = 16 << 20;

/// Keep freed memory for reuse in a process that takes one small file after another (a reader
/// that stays up): the allocator would otherwise hand back the top of its heap at every free
/// of a block over 128 KiB (a small return's sheet) and take it back, a page fault a page,
/// for the next file. [`hand_back`] then decides alone.
pub fn keep_for_reuse() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets the allocator's thresholds.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, (2 * KEPT_FREE) as libc::c_int);
        libc::mallopt(libc::M_MMAP_THRESHOLD, KEPT_FREE as libc::c_int);
    }
}

/// Hand the allocator's free memory back to the system when it is much (16 MiB or more: a
/// large workbook's cells, a master's rows). The allocator keeps freed blocks for reuse, so a
/// process that stays up (the daemon after a burst, a reader child between files) would carry
/// its largest moment's footprint for good. Less is kept: taking it back from the system for
/// the next file would cost a page fault a page (~100 for a small return).
pub fn hand_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallinfo2 only reads the allocator's counts; malloc_trim only returns free
    // memory of the allocator's arenas.
    unsafe {
        if libc::mallinfo2().fordblks > KEPT_FREE {
            libc::malloc_trim(0);
        }
    }
}
