//! A zip container (.xlsx, .ods) unpacked once in the reader child: every entry inflated and
//! checked against the limits (count, declared and real sizes, ratio, CRC-32) as it is
//! (DESIGN.md §7), and handed to calamine as a zip of the same entries stored, so nothing is
//! inflated twice. A large container is inflated on a thread of its own while calamine
//! parses what is there already (both cores): a read of a part not inflated yet waits for it.
//! A read of a part that failed its checks fails, and the check's finding is the answer.

use super::{damaged, too_large, unreadable, unsupported};
use crate::core::findings::Finding;
use crate::read::Limits;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// One entry of the container as its central directory declares it.
struct Declared {
    name: String,
    size: u64,
    crc: u32,
}

/// Check a zip container before any XML is parsed: entry count, declared and real inflated
/// sizes, inflate ratio. Inflates each entry into a sink, never into memory.
pub fn check_zip(bytes: &[u8], limits: &Limits) -> Result<(), Finding> {
    let declared = declared(bytes, limits)?;
    inflate_all(bytes, &declared, limits, &mut Counted)
}

/// The container's entries as declared, after the checks that need no inflating: the count,
/// each entry's ratio, the declared total, encryption and compression method.
fn declared(bytes: &[u8], limits: &Limits) -> Result<Vec<Declared>, Finding> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| {
        unreadable(format!(
            "文件已损坏，无法作为 Excel 文件打开（{e}）。请用 Excel 或 WPS 重新另存为 .xlsx 后再报送。"
        ))
    })?;
    if archive.len() > limits.zip_max_entries {
        return Err(too_large(format!(
            "文件内部包含 {} 个部件，超过上限 {}，不像正常的报表文件。请用模板重新填写后报送。",
            archive.len(),
            limits.zip_max_entries
        )));
    }
    let mut declared_total: u64 = 0;
    let mut entries = Vec::with_capacity(archive.len());
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i).map_err(|e| {
            unreadable(format!(
                "文件已损坏（第 {} 个部件无法读取：{e}），请重新保存后报送。",
                i + 1
            ))
        })?;
        let name = entry.name().map(|n| n.into_owned()).unwrap_or_default();
        declared_total = declared_total.saturating_add(entry.size());
        let compressed = entry.compressed_size().max(1);
        if entry.size() > 1024 * 1024 && entry.size() / compressed > limits.zip_max_ratio {
            return Err(too_large(format!(
                "文件内部部件“{name}”解压后达 {} 字节（压缩比 {}:1），超过安全上限，不像正常的报表文件，未予读取。",
                entry.size(),
                entry.size() / compressed
            )));
        }
        if entry.encrypted() {
            return Err(unsupported("encrypted"));
        }
        match entry.compression() {
            zip::CompressionMethod::Stored | zip::CompressionMethod::Deflated => {}
            other => return Err(unsupported(&format!("{other:?}"))),
        }
        entries.push(Declared {
            name,
            size: entry.size(),
            crc: entry.crc32(),
        });
    }
    if declared_total > limits.zip_max_inflated_bytes {
        return Err(too_large(format!(
            "文件解压后共 {declared_total} 字节，超过上限 {} 字节，未予读取。请删除无关的工作表或分文件报送。",
            limits.zip_max_inflated_bytes
        )));
    }
    Ok(entries)
}

/// When an entry is inflated: the parts calamine reads when it opens the workbook (its list
/// of sheets, shared strings, styles) first, then the sheets, then pictures and embedded
/// files, which no one reads. Each rank in the container's own order.
fn rank(name: &str) -> u8 {
    let under = |dir: &str| name.starts_with(dir);
    if under("xl/worksheets/") && !under("xl/worksheets/_rels/") {
        1
    } else if under("xl/media/") || under("xl/embeddings/") || under("Pictures/") {
        2
    } else {
        0
    }
}

/// The entries' indices in the order they are inflated ([`rank`]).
fn fill_order(declared: &[Declared]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..declared.len()).collect();
    order.sort_by_key(|&i| rank(&declared[i].name));
    order
}

/// Where [`inflate_all`] puts each entry's bytes as they are inflated.
trait Entries {
    /// The entry at this index of the container begins.
    fn start(&mut self, index: usize);
    /// More of its bytes.
    fn write(&mut self, buf: &[u8]);
    /// It ended, whole and checked.
    fn end(&mut self);
}

/// Entries only counted and checked ([`check_zip`]).
struct Counted;

impl Entries for Counted {
    fn start(&mut self, _: usize) {}
    fn write(&mut self, _: &[u8]) {}
    fn end(&mut self) {}
}

/// Where an entry is inflated to: its CRC-32 taken on the way to `out`.
struct Inflated<'o> {
    crc: crc32fast::Hasher,
    out: &'o mut dyn Entries,
}

impl std::io::Write for Inflated<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.crc.update(buf);
        self.out.write(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Inflate every entry once into `out`, in [`fill_order`], each counted against the budget and
/// its CRC-32 checked. Declared sizes can lie: the raw (still compressed) entry is inflated
/// here, so that an entry that inflates past its declared size is recognised by our own
/// count, not by the text of the zip crate's error.
fn inflate_all(
    bytes: &[u8],
    declared: &[Declared],
    limits: &Limits,
    out: &mut dyn Entries,
) -> Result<(), Finding> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| damaged(&e))?;
    let mut budget = limits.zip_max_inflated_bytes;
    for i in fill_order(declared) {
        let entry = archive.by_index_raw(i).map_err(|e| damaged(&e))?;
        let Declared { name, size, crc } = &declared[i];
        let inflated: Box<dyn Read + '_> = match entry.compression() {
            zip::CompressionMethod::Stored => Box::new(entry),
            zip::CompressionMethod::Deflated => Box::new(flate2::read::DeflateDecoder::new(entry)),
            other => return Err(unsupported(&format!("{other:?}"))),
        };
        out.start(i);
        let mut sink = Inflated {
            crc: crc32fast::Hasher::new(),
            out: &mut *out,
        };
        let n =
            std::io::copy(&mut inflated.take((*size).min(budget) + 1), &mut sink).map_err(|e| {
                unreadable(format!(
                    "文件已损坏（部件“{name}”无法解压：{e}），请重新保存后报送。"
                ))
            })?;
        if n > *size {
            return Err(too_large(format!(
                "文件内部部件“{name}”解压后超过了它声明的大小，不像正常的报表文件，未予读取。"
            )));
        }
        if n > budget {
            return Err(too_large(format!(
                "文件解压后超过上限 {} 字节，未予读取。",
                limits.zip_max_inflated_bytes
            )));
        }
        if n < *size || sink.crc.finalize() != *crc {
            return Err(unreadable(format!(
                "文件已损坏（部件“{name}”校验失败），请重新保存后报送。"
            )));
        }
        out.end();
        budget -= n;
    }
    Ok(())
}

/// What every element of merged cells has in its name (`<mergeCells>`, `<mergeCell ref=…>`, with
/// any namespace prefix); element names are never escaped in XML.
const MERGE_TAG: &[u8] = b"mergeCell";

/// An entry's inflated bytes are handed over in pieces of this size: calamine parses one while
/// the next is inflated.
const PIECE: u64 = 256 * 1024;

/// A container smaller than this (inflated) is unpacked whole before calamine opens it, on
/// the caller's thread: a thread of its own costs more than it would save.
const ON_A_THREAD: u64 = 1024 * 1024;

/// The unpacked container as calamine reads it: a zip of every entry stored, laid out
/// ([`Layout`]) before any is inflated. Cloned, a second reader of the same bytes.
#[derive(Clone)]
pub(super) struct Unpacked {
    shared: Arc<Shared>,
    pos: u64,
}

struct Shared {
    layout: Layout,
    fill: Mutex<Fill>,
    /// Notified when a piece is added or the inflating ends.
    more: Condvar,
    /// Some entry inflated so far names merged cells ([`MERGE_TAG`]). When none does, no
    /// sheet has any and calamine need not parse a sheet a second time to look for them.
    merges: AtomicBool,
    /// The entry read last (by its index in the container).
    reading: AtomicUsize,
}

impl Shared {
    /// Nothing inflated yet of the container of these entries.
    fn new(declared: &[Declared]) -> Result<Shared, Finding> {
        Ok(Shared {
            layout: Layout::of(declared)?,
            fill: Mutex::new(Fill::new(declared.len())),
            more: Condvar::new(),
            merges: AtomicBool::new(false),
            reading: AtomicUsize::new(0),
        })
    }
}

struct Fill {
    /// Per entry (by its index in the container), its inflated pieces so far.
    pieces: Vec<Vec<Arc<Vec<u8>>>>,
    /// Per entry, inflated whole and checked.
    whole: Vec<bool>,
    /// The inflating ended (whole or not: its result says).
    ended: bool,
}

impl Fill {
    fn new(entries: usize) -> Fill {
        Fill {
            pieces: vec![Vec::new(); entries],
            whole: vec![false; entries],
            ended: false,
        }
    }
}

/// The stored container's bytes: local headers, entries' data and the central directory, at
/// offsets fixed by the declared sizes (the checks refuse an entry of any other size).
struct Layout {
    /// Each region's start, in order; a region ends where the next begins.
    regions: Vec<(u64, Region)>,
    len: u64,
}

/// `n` as a 32-bit zip field: below the value that means "see the zip64 fields".
fn field32(n: u64) -> Option<u32> {
    u32::try_from(n).ok().filter(|&n| n != u32::MAX)
}

enum Region {
    /// Headers, known from the start.
    Bytes(Vec<u8>),
    /// The data of the entry at this index, as it is inflated.
    Entry(usize),
}

impl Layout {
    /// Entries are laid out pictures and sheets first, the parts read at opening last, right
    /// before the central directory: the zip crate looks for the directory's end by reading
    /// the last kilobyte, which is then there from the start.
    fn of(declared: &[Declared]) -> Result<Layout, Finding> {
        let mut order = fill_order(declared);
        order.reverse();
        let mut regions = Vec::with_capacity(declared.len() * 2 + 1);
        let mut central = Vec::new();
        let mut offset = 0u64;
        for i in order {
            let Declared { name, size, crc } = &declared[i];
            let name = name.as_bytes();
            let (Some(size32), Ok(name_len), Some(at)) =
                (field32(*size), u16::try_from(name.len()), field32(offset))
            else {
                return Err(too_large(
                    "文件过大，未予读取。请删除无关的工作表或分文件报送。",
                ));
            };
            // Version 2.0, UTF-8 names (bit 11), stored, dated 1980-01-01.
            let common = |h: &mut Vec<u8>| {
                for half in [20u16, 0x0800, 0, 0, 0x21] {
                    h.extend_from_slice(&half.to_le_bytes());
                }
                h.extend_from_slice(&crc.to_le_bytes());
                h.extend_from_slice(&size32.to_le_bytes());
                h.extend_from_slice(&size32.to_le_bytes());
                h.extend_from_slice(&name_len.to_le_bytes());
                h.extend_from_slice(&0u16.to_le_bytes()); // no extra field
            };
            let mut local = 0x0403_4b50u32.to_le_bytes().to_vec();
            common(&mut local);
            local.extend_from_slice(name);
            central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
            central.extend_from_slice(&20u16.to_le_bytes()); // made by 2.0
            common(&mut central);
            // No comment, disk 0, no attributes, the local header's offset.
            central.extend_from_slice(&[0; 10]);
            central.extend_from_slice(&at.to_le_bytes());
            central.extend_from_slice(name);
            let local_len = local.len() as u64;
            regions.push((offset, Region::Bytes(local)));
            regions.push((offset + local_len, Region::Entry(i)));
            offset += local_len + size;
        }
        let count = u16::try_from(declared.len())
            .ok()
            .filter(|&n| n != u16::MAX);
        let (Some(count), Some(central_len), Some(central_at)) =
            (count, field32(central.len() as u64), field32(offset))
        else {
            return Err(too_large(
                "文件过大，未予读取。请删除无关的工作表或分文件报送。",
            ));
        };
        let mut end = central;
        end.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        end.extend_from_slice(&[0; 4]); // disk 0, directory on disk 0
        end.extend_from_slice(&count.to_le_bytes());
        end.extend_from_slice(&count.to_le_bytes());
        end.extend_from_slice(&central_len.to_le_bytes());
        end.extend_from_slice(&central_at.to_le_bytes());
        end.extend_from_slice(&0u16.to_le_bytes()); // no comment
        let len = offset + end.len() as u64;
        regions.push((offset, Region::Bytes(end)));
        Ok(Layout { regions, len })
    }
}

/// A container being unpacked ([`unpack`]): its reader for calamine, and the end of the
/// inflating to wait for ([`Unpacking::finish`]).
pub(super) struct Unpacking<'scope> {
    pub reader: Unpacked,
    inflating: Inflating<'scope>,
}

enum Inflating<'scope> {
    Done(Result<(), Finding>),
    OnThread(std::thread::ScopedJoinHandle<'scope, Result<(), Finding>>),
}

impl Unpacking<'_> {
    /// Wait for every entry to be inflated and checked: the finding that refuses the file,
    /// whatever calamine made of it meanwhile.
    pub fn finish(self) -> Result<(), Finding> {
        match self.inflating {
            Inflating::Done(result) => result,
            Inflating::OnThread(handle) => handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
        }
    }
}

/// Unpack `bytes` ([`Unpacked`]): the checks that need no inflating now, the inflating on a
/// thread of `scope` for a large container, else now.
pub(super) fn unpack<'scope, 'env>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    bytes: &'env [u8],
    limits: &'env Limits,
) -> Result<Unpacking<'scope>, Finding> {
    let declared: Arc<[Declared]> = declared(bytes, limits)?.into();
    let total: u64 = declared.iter().map(|d| d.size).sum();
    let shared = Arc::new(Shared::new(&declared)?);
    let reader = Unpacked {
        shared: Arc::clone(&shared),
        pos: 0,
    };
    let fill = |shared: &Shared, declared: &[Declared]| {
        // Dropped at the end, the filler ends the unpacking.
        inflate_all(bytes, declared, limits, &mut Filler::new(shared, declared))
    };
    let inflating = if total < ON_A_THREAD {
        Inflating::Done(fill(&shared, &declared))
    } else {
        let on_thread = {
            let (shared, declared) = (Arc::clone(&shared), Arc::clone(&declared));
            move || fill(&shared, &declared)
        };
        match std::thread::Builder::new().spawn_scoped(scope, on_thread) {
            Ok(handle) => Inflating::OnThread(handle),
            // No thread to be had: unpacked whole here, before calamine opens it.
            Err(_) => Inflating::Done(fill(&shared, &declared)),
        }
    };
    Ok(Unpacking { reader, inflating })
}

impl Unpacked {
    /// Whether some entry names merged cells, asked at the end of a sheet: once the entry read
    /// last (the sheet's) has been inflated whole. calamine stops reading a sheet at the end
    /// of its cells; its merged cells come after them, maybe in a piece not inflated yet.
    pub fn merges(&self) -> bool {
        let entry = self.shared.reading.load(Ordering::Acquire);
        if let Ok(mut fill) = self.shared.fill.lock() {
            while !fill.whole.get(entry).copied().unwrap_or(true) && !fill.ended {
                match self.shared.more.wait(fill) {
                    Ok(f) => fill = f,
                    // The inflating failed: its finding is the answer, not this.
                    Err(_) => return true,
                }
            }
        }
        self.shared.merges.load(Ordering::Acquire)
    }

    /// Piece `k` of entry `index`, once it is inflated; an error once the inflating ended
    /// without it (the entry failed its checks).
    fn piece(&self, index: usize, k: usize) -> std::io::Result<Arc<Vec<u8>>> {
        let poisoned = |_| std::io::Error::other("the unpacking failed");
        let mut fill = self.shared.fill.lock().map_err(poisoned)?;
        loop {
            if let Some(piece) = fill.pieces[index].get(k) {
                return Ok(Arc::clone(piece));
            }
            if fill.ended {
                return Err(std::io::Error::other(
                    "this part of the file could not be unpacked",
                ));
            }
            fill = self.shared.more.wait(fill).map_err(poisoned)?;
        }
    }
}

impl Read for Unpacked {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let layout = &self.shared.layout;
        if self.pos >= layout.len || buf.is_empty() {
            return Ok(0);
        }
        // The last region that starts at or before the position (an empty entry shares its
        // start with the header after it).
        let at = layout
            .regions
            .partition_point(|(start, _)| *start <= self.pos)
            - 1;
        let (start, region) = &layout.regions[at];
        let offset = self.pos - start;
        let n = match region {
            Region::Bytes(bytes) => {
                let from = &bytes[offset as usize..];
                let n = from.len().min(buf.len());
                buf[..n].copy_from_slice(&from[..n]);
                n
            }
            Region::Entry(index) => {
                self.shared.reading.store(*index, Ordering::Release);
                let piece = self.piece(*index, (offset / PIECE) as usize)?;
                // Never past the entry's declared end (an entry that inflates past it is
                // refused, but its last piece may be handed over first).
                let end = layout
                    .regions
                    .get(at + 1)
                    .map_or(layout.len, |(next, _)| *next);
                let from = &piece[(offset % PIECE) as usize..];
                let n = from.len().min(buf.len()).min((end - self.pos) as usize);
                buf[..n].copy_from_slice(&from[..n]);
                n
            }
        };
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Unpacked {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.shared.layout.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start")
        })?;
        Ok(self.pos)
    }
}

/// The inflating's side: each entry's bytes cut into pieces and handed over as they come,
/// looking for [`MERGE_TAG`] on the way (also across two pieces). Dropped, it ends the
/// unpacking, whether the inflating finished, failed or panicked: no reader waits for ever.
struct Filler<'s> {
    shared: &'s Shared,
    declared: &'s [Declared],
    entry: usize,
    /// Bytes of the entry handed over so far.
    handed: u64,
    piece: Vec<u8>,
    finder: memchr::memmem::Finder<'static>,
    /// The end of the entry's last bytes, too short to hold the tag.
    tail: Vec<u8>,
}

impl<'s> Filler<'s> {
    fn new(shared: &'s Shared, declared: &'s [Declared]) -> Self {
        Filler {
            shared,
            declared,
            entry: 0,
            handed: 0,
            piece: Vec::new(),
            finder: memchr::memmem::Finder::new(MERGE_TAG),
            tail: Vec::with_capacity(MERGE_TAG.len()),
        }
    }

    fn hand_over(&mut self) {
        self.handed += self.piece.len() as u64;
        let left = self.declared[self.entry].size.saturating_sub(self.handed);
        let next = Vec::with_capacity(left.min(PIECE) as usize);
        let piece = Arc::new(std::mem::replace(&mut self.piece, next));
        if let Ok(mut fill) = self.shared.fill.lock() {
            fill.pieces[self.entry].push(piece);
        }
        self.shared.more.notify_all();
    }
}

impl Entries for Filler<'_> {
    fn start(&mut self, index: usize) {
        self.entry = index;
        self.handed = 0;
        self.tail.clear();
        self.piece = Vec::with_capacity(self.declared[index].size.min(PIECE) as usize);
    }

    fn write(&mut self, mut buf: &[u8]) {
        if !self.shared.merges.load(Ordering::Relaxed) {
            // The tag may begin in the last bytes and end in these.
            let keep = MERGE_TAG.len() - 1;
            self.tail.extend_from_slice(&buf[..buf.len().min(keep)]);
            if self.finder.find(&self.tail).is_some() || self.finder.find(buf).is_some() {
                self.shared.merges.store(true, Ordering::Release);
            }
            // What is kept for the next bytes: the last `keep` bytes so far.
            if buf.len() >= keep {
                self.tail.clear();
                self.tail.extend_from_slice(&buf[buf.len() - keep..]);
            } else {
                let excess = self.tail.len().saturating_sub(keep);
                self.tail.drain(..excess);
            }
        }
        while !buf.is_empty() {
            let room = PIECE as usize - self.piece.len();
            let (now, rest) = buf.split_at(room.min(buf.len()));
            self.piece.extend_from_slice(now);
            buf = rest;
            if self.piece.len() == PIECE as usize {
                self.hand_over();
            }
        }
    }

    fn end(&mut self) {
        if !self.piece.is_empty() {
            self.hand_over();
        }
        if let Ok(mut fill) = self.shared.fill.lock() {
            fill.whole[self.entry] = true;
        }
        self.shared.more.notify_all();
    }
}

impl Drop for Filler<'_> {
    fn drop(&mut self) {
        if let Ok(mut fill) = self.shared.fill.lock() {
            fill.ended = true;
        }
        self.shared.more.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits::default()
    }

    /// The merge tag is found whole in one write of an entry, across two, across writes
    /// shorter than itself, and not where there is none.
    #[test]
    fn the_merge_tag_is_found_across_pieces() {
        let found = |pieces: &[&[u8]]| {
            let declared = [Declared {
                name: "xl/worksheets/sheet1.xml".into(),
                size: pieces.iter().map(|p| p.len() as u64).sum(),
                crc: 0,
            }];
            let shared = Shared::new(&declared).unwrap();
            let mut filler = Filler::new(&shared, &declared);
            filler.start(0);
            for p in pieces {
                filler.write(p);
            }
            filler.end();
            shared.merges.load(Ordering::Relaxed)
        };
        assert!(found(&[b"<x><mergeCells count=\"1\">"]));
        assert!(found(&[b"<x><merg", b"eCells>"]));
        assert!(found(&[b"<me", b"r", b"g", b"eCe", b"ll"]));
        assert!(!found(&[b"<x><merg", b"<eCells>"]));
        assert!(!found(&[b"mergeCel"]));
    }

    /// Asked at the end of a sheet's cells, whether it has merged cells waits for the rest of
    /// its entry: the merged cells come after the cells, maybe not inflated yet.
    #[test]
    fn merged_cells_after_the_cells_are_waited_for() {
        let cells = vec![b'x'; PIECE as usize];
        let tail = b"</sheetData><mergeCells count=\"1\"><mergeCell ref=\"A2:A3\"/></mergeCells>";
        let declared = [Declared {
            name: "xl/worksheets/sheet1.xml".into(),
            size: (cells.len() + tail.len()) as u64,
            crc: 0,
        }];
        let shared = Arc::new(Shared::new(&declared).unwrap());
        let reader = Unpacked {
            shared: Arc::clone(&shared),
            pos: 0,
        };
        std::thread::scope(|scope| {
            let mut filler = Filler::new(&shared, &declared);
            filler.start(0);
            // The cells' piece is there; the merged cells come later.
            filler.write(&cells);
            assert_eq!(shared.fill.lock().unwrap().pieces[0].len(), 1);
            scope.spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(50));
                filler.write(tail);
                filler.end();
                drop(filler);
            });
            assert!(reader.merges());
        });
    }

    /// A container of many entries, one of them larger than a piece and than the threshold
    /// of a thread of its own.
    fn container() -> Vec<u8> {
        use std::io::Write;
        let mut buf = Cursor::new(Vec::new());
        let mut z = zip::ZipWriter::new(&mut buf);
        let deflated = zip::write::SimpleFileOptions::default();
        let stored = deflated.compression_method(zip::CompressionMethod::Stored);
        z.add_directory("xl/media/", stored).unwrap();
        z.start_file("xl/media/image1.png", stored).unwrap();
        z.write_all(&[7u8; 3000]).unwrap();
        z.start_file("xl/worksheets/sheet1.xml", deflated).unwrap();
        for i in 0..200_000 {
            write!(z, "<c r=\"A{i}\"><v>{i}</v></c>").unwrap();
        }
        z.start_file("xl/empty.xml", deflated).unwrap();
        z.start_file("[Content_Types].xml", deflated).unwrap();
        z.write_all("<Types>类型</Types>".as_bytes()).unwrap();
        z.finish().unwrap();
        buf.into_inner()
    }

    /// Read through the zip crate, the unpacked container holds every entry of the original,
    /// byte for byte, under the same name — read while it is still being inflated.
    #[test]
    fn the_unpacked_container_holds_the_originals_entries() {
        let bytes = container();
        let mut original = zip::ZipArchive::new(Cursor::new(&bytes)).unwrap();
        let limits = limits();
        std::thread::scope(|scope| {
            let unpacking = unpack(scope, &bytes, &limits).unwrap();
            assert!(matches!(unpacking.inflating, Inflating::OnThread(_)));
            let mut copy = zip::ZipArchive::new(unpacking.reader.clone()).unwrap();
            assert_eq!(copy.len(), original.len());
            for i in 0..original.len() {
                let mut a = original.by_index(i).unwrap();
                let name = a.name().unwrap().into_owned();
                let mut b = copy.by_name(&name).unwrap();
                assert_eq!(b.compression(), zip::CompressionMethod::Stored, "{name}");
                let (mut x, mut y) = (Vec::new(), Vec::new());
                a.read_to_end(&mut x).unwrap();
                b.read_to_end(&mut y).unwrap();
                assert_eq!(x, y, "{name}");
            }
            unpacking.finish().unwrap();
        });
    }

    /// An entry that fails its check (here its CRC-32) fails the reads of it, and the
    /// unpacking ends with the check's finding.
    #[test]
    fn an_entry_that_fails_its_check_fails_its_reads() {
        let mut bytes = container();
        // The sheet's CRC-32 in its local header and in the central directory.
        let mut original = zip::ZipArchive::new(Cursor::new(&bytes)).unwrap();
        let crc = original
            .by_name("xl/worksheets/sheet1.xml")
            .unwrap()
            .crc32()
            .to_le_bytes();
        let wrong = (u32::from_le_bytes(crc) ^ 1).to_le_bytes();
        let at: Vec<usize> = bytes
            .windows(4)
            .enumerate()
            .filter(|(_, w)| *w == crc)
            .map(|(i, _)| i)
            .collect();
        assert!(!at.is_empty());
        for i in at {
            bytes[i..i + 4].copy_from_slice(&wrong);
        }
        let limits = limits();
        std::thread::scope(|scope| {
            let unpacking = unpack(scope, &bytes, &limits).unwrap();
            // The directory's end is read with the last kilobyte before it, here the sheet's
            // own: the container may not even open.
            let mut sheet = Vec::new();
            let read = zip::ZipArchive::new(unpacking.reader.clone()).and_then(|mut copy| {
                let mut f = copy.by_name("xl/worksheets/sheet1.xml")?;
                Ok(f.read_to_end(&mut sheet)?)
            });
            assert!(read.is_err());
            let f = unpacking.finish().unwrap_err();
            assert!(f.message.contains("校验失败"), "{}", f.message);
        });
    }
}
