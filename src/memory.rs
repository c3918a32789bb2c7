//! The allocator's free memory handed back to the system.

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
        const KEPT_FREE: usize = 16 << 20;
        if libc::mallinfo2().fordblks > KEPT_FREE {
            libc::malloc_trim(0);
        }
    }
}
