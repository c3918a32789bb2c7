//! Reading untrusted return files (DESIGN.md §7): size check, zip container check, then
//! calamine — all in a child process (`tally` re-invoked, on Linux a copy of a caller that
//! runs no other thread, or for the small files of a burst a reader that stays up for the
//! next ones, [`server`]) with a memory cap and a time limit, so a hostile file becomes a
//! finding, never a crash of the caller. calamine's types stop here.

use crate::core::findings::{Code, Finding};
use crate::core::workbook::{Cell, Range, Sheet, Workbook};
use crate::sandbox::Confined;
use calamine::{Data, Reader};
use serde::{Deserialize, Serialize};
use std::io::{Cursor, Read, Seek};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub mod server;
mod unpack;

pub use unpack::check_zip;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest return file accepted, in bytes.
    pub max_file_bytes: u64,
    /// Most roster rows in one return.
    pub max_rows: usize,
    /// Address-space cap of the reader child process, in MiB.
    pub reader_memory_mb: u64,
    /// Wall-clock limit of the reader child process, in seconds.
    pub reader_seconds: u64,
    /// Most entries in a zip container (.xlsx, .xlsm, .ods).
    pub zip_max_entries: usize,
    /// Largest total inflated size of a zip container, in bytes.
    pub zip_max_inflated_bytes: u64,
    /// Largest inflate ratio of one entry (checked for entries over 1 MiB inflated).
    pub zip_max_ratio: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 20 * 1024 * 1024,
            max_rows: 100_000,
            reader_memory_mb: 2048,
            reader_seconds: 60,
            zip_max_entries: 10_000,
            zip_max_inflated_bytes: 512 * 1024 * 1024,
            zip_max_ratio: 200,
        }
    }
}

impl Limits {
    /// The limits as one command-line argument (the reader child's `--limits`): the seven
    /// numbers in the order of the fields, comma-separated.
    pub fn to_arg(&self) -> String {
        let l = self;
        format!(
            "{},{},{},{},{},{},{}",
            l.max_file_bytes,
            l.max_rows,
            l.reader_memory_mb,
            l.reader_seconds,
            l.zip_max_entries,
            l.zip_max_inflated_bytes,
            l.zip_max_ratio
        )
    }

    /// [`Limits::to_arg`] read back; None unless it is exactly that, every limit above 0.
    pub fn from_arg(arg: &str) -> Option<Limits> {
        let n: Vec<u64> = arg
            .split(',')
            .map(|p| p.parse().ok())
            .collect::<Option<_>>()?;
        let [
            max_file_bytes,
            max_rows,
            reader_memory_mb,
            reader_seconds,
            zip_max_entries,
            zip_max_inflated_bytes,
            zip_max_ratio,
        ] = n[..]
        else {
            return None;
        };
        let limits = Limits {
            max_file_bytes,
            max_rows: usize::try_from(max_rows).ok()?,
            reader_memory_mb,
            reader_seconds,
            zip_max_entries: usize::try_from(zip_max_entries).ok()?,
            zip_max_inflated_bytes,
            zip_max_ratio,
        };
        limits.problems().is_empty().then_some(limits)
    }

    /// Every limit set to 0, with its key under `[limits]`.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let l = self;
        [
            ("max_file_bytes", l.max_file_bytes == 0),
            ("max_rows", l.max_rows == 0),
            ("reader_memory_mb", l.reader_memory_mb == 0),
            ("reader_seconds", l.reader_seconds == 0),
            ("zip_max_entries", l.zip_max_entries == 0),
            ("zip_max_inflated_bytes", l.zip_max_inflated_bytes == 0),
            ("zip_max_ratio", l.zip_max_ratio == 0),
        ]
        .into_iter()
        .filter(|(_, zero)| *zero)
        .map(|(key, _)| (key, "must be above 0".to_string()))
        .collect()
    }
}

/// The hidden subcommand the parent runs in the child.
pub const CHILD_COMMAND: &str = "__read";

/// What the child writes on stdout, after the SHA-256 (64 lower-case hex digits) of the bytes
/// it read: frames, each a length (u32, little-endian) and that many bytes of postcard
/// (compact binary; the parent decodes them with the same types, so the framing never leaves
/// this file). The cells go out as they are read, so the parent puts the workbook together
/// while the child is still reading (both cores); each cell is encoded into its frame as it
/// comes, its text straight from the reader's own. A read started ahead on the dropped file
/// itself stands only for the very bytes intake then stages.
#[derive(Debug, Serialize)]
enum FrameOut<'a> {
    /// A sheet begins: its name.
    Sheet(&'a str),
    /// Cells of the sheet begun last, as (row, column, value), in the order read. Never made
    /// whole: [`FrameWriter::flush_cells`] writes its encoding from cells encoded one by one.
    #[allow(dead_code)]
    Cells(&'a [(u32, u32, Cell)]),
    /// That sheet ends: its merged ranges.
    EndSheet(&'a [Range]),
    /// Every sheet has been sent.
    Done,
    /// The file is refused; whatever came before it is void.
    Refused(&'a Finding),
}

/// [`FrameOut`] as the parent reads it (the same shape, owned).
#[derive(Debug, Deserialize)]
enum Frame {
    Sheet(String),
    Cells(Vec<(u32, u32, Cell)>),
    EndSheet(Vec<Range>),
    Done,
    Refused(Finding),
}

/// Cells sent in one frame (a few hundred kilobytes at most).
const FRAME_CELLS: usize = 4096;

/// Cells in the first frame of the answer; each next one holds twice as many, up to
/// [`FRAME_CELLS`]. The parent takes the first cells of a small return while the child still
/// reads the rest, instead of all of them after it.
const FIRST_FRAME_CELLS: usize = 256;

/// The child's side of the answer: frames written to the parent as the cells come. A write
/// that fails (the parent went away) ends the sending; [`FrameWriter::finish`] says so.
struct FrameWriter<W: std::io::Write> {
    out: W,
    /// The cells of the frame being made, each encoded as it came.
    cells: Vec<u8>,
    /// How many.
    count: usize,
    /// How many make a frame now (from [`FIRST_FRAME_CELLS`] up to [`FRAME_CELLS`]).
    frame_cells: usize,
    buf: Vec<u8>,
    failed: bool,
}

/// The place of [`FrameOut::Cells`] among the variants of [`FrameOut`]: the first thing in
/// its frame (postcard writes a variant's place, then a slice's length, as varints).
const CELLS_VARIANT: u32 = 1;

impl<W: std::io::Write> FrameWriter<W> {
    fn new(out: W) -> Self {
        FrameWriter {
            out,
            cells: Vec::new(),
            count: 0,
            frame_cells: FIRST_FRAME_CELLS,
            buf: Vec::new(),
            failed: false,
        }
    }

    fn send(&mut self, frame: &FrameOut<'_>) {
        if self.failed {
            return;
        }
        self.buf.clear();
        self.buf.extend_from_slice(&[0; 4]);
        let buf = std::mem::take(&mut self.buf);
        match postcard::to_extend(frame, buf) {
            Ok(mut buf) => {
                let len = u32::try_from(buf.len() - 4).unwrap_or(u32::MAX);
                buf[..4].copy_from_slice(&len.to_le_bytes());
                self.failed = self.write(&buf);
                self.buf = buf;
            }
            Err(_) => self.failed = true,
        }
    }

    /// Write one whole frame and hand it to the parent now; whether that failed.
    fn write(&mut self, frame: &[u8]) -> bool {
        self.out
            .write_all(frame)
            .and_then(|()| self.out.flush())
            .is_err()
    }

    /// Send the cells encoded so far as one [`FrameOut::Cells`] frame: the variant's place
    /// and the count, then the cells as they were encoded.
    fn flush_cells(&mut self) {
        if self.count == 0 || self.failed {
            self.cells.clear();
            self.count = 0;
            return;
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.extend_from_slice(&[0; 4]);
        match postcard::to_extend(&(CELLS_VARIANT, self.count as u64), buf) {
            Ok(mut buf) => {
                buf.extend_from_slice(&self.cells);
                let len = u32::try_from(buf.len() - 4).unwrap_or(u32::MAX);
                buf[..4].copy_from_slice(&len.to_le_bytes());
                self.failed = self.write(&buf);
                self.buf = buf;
                self.frame_cells = (self.frame_cells * 2).min(FRAME_CELLS);
            }
            Err(_) => self.failed = true,
        }
        self.cells.clear();
        self.count = 0;
    }

    /// Send the end (`Done`, or the finding that refuses the file); whether everything was
    /// sent.
    fn finish(mut self, result: Result<(), Finding>) -> bool {
        match result {
            Ok(()) => {
                self.flush_cells();
                self.send(&FrameOut::Done);
            }
            // The cells read before it are void: not sent.
            Err(f) => self.send(&FrameOut::Refused(&f)),
        }
        !self.failed && self.out.flush().is_ok()
    }
}

impl<W: std::io::Write> CellSink for FrameWriter<W> {
    fn sheet(&mut self, name: &str) {
        self.flush_cells();
        self.send(&FrameOut::Sheet(name));
    }

    fn cell(&mut self, row: u32, col: u32, cell: CellRef<'_>) {
        if self.failed {
            return;
        }
        let cells = std::mem::take(&mut self.cells);
        match postcard::to_extend(&(row, col, cell), cells) {
            Ok(cells) => self.cells = cells,
            Err(_) => self.failed = true,
        }
        self.count += 1;
        if self.count >= self.frame_cells {
            self.flush_cells();
        }
    }

    fn end_sheet(&mut self, merged: &[Range]) {
        self.flush_cells();
        self.send(&FrameOut::EndSheet(merged));
    }
}

/// What the parent took from a child's stdout.
#[derive(Default)]
struct Received {
    /// The SHA-256 the child sent first (None: it could not read the file, or sent nothing).
    sha256: Option<String>,
    /// The workbook or the finding, when the child's answer came to its end whole.
    answer: Option<Result<Workbook, Finding>>,
    /// The child sent more than the parent takes.
    over_cap: bool,
    /// Bytes of frames taken.
    taken: u64,
}

/// Take a child's answer from `out` as it comes, putting the workbook together meanwhile
/// (and with a `precheck`, checking its roster's rows as they come, then the rest): at most
/// `cap` bytes, and cells worth at most `cap` bytes of memory. Everything past the answer (or
/// past the cap) is read and dropped, so the child is never blocked on a full pipe.
fn receive(out: impl Read, cap: u64, precheck: Option<Prechecking>) -> (Received, Option<Checked>) {
    // Taken a pipe's worth at a time, not frame by frame: the answer is all this pipe holds.
    let mut out = std::io::BufReader::with_capacity(64 * 1024, out);
    let received = receive_answer(&mut out, cap, precheck);
    let _ = std::io::copy(&mut out, &mut std::io::sink());
    received
}

/// [`receive`] up to the end of one answer (or the cap, or the end of `out`), nothing past
/// it: a reader that stays up sends the next file's answer after it ([`server`]).
fn receive_answer(
    mut out: impl Read,
    cap: u64,
    mut precheck: Option<Prechecking>,
) -> (Received, Option<Checked>) {
    let mut received = Received::default();
    let mut sha = [0u8; NO_SHA.len()];
    if out.read_exact(&mut sha).is_ok() {
        received.sha256 = sha_sent(&sha);
        let mut wb = Assembly::new(cap);
        let mut taken = 0u64;
        let mut body = Vec::new();
        loop {
            let mut len = [0u8; 4];
            if out.read_exact(&mut len).is_err() {
                break; // ended before its answer: the exit status tells why
            }
            let len = u32::from_le_bytes(len);
            taken += 4 + u64::from(len);
            if taken > cap {
                received.over_cap = true;
                break;
            }
            // Grown as the bytes come, not sized from the length first.
            body.clear();
            let whole = (&mut out)
                .take(u64::from(len))
                .read_to_end(&mut body)
                .is_ok_and(|n| n == len as usize);
            if !whole {
                break;
            }
            let Ok(frame) = postcard::from_bytes::<Frame>(&body) else {
                break;
            };
            match frame {
                Frame::Sheet(name) => wb.sheet(&name),
                Frame::Cells(cells) => {
                    for (row, col, cell) in cells {
                        wb.place(row, col, cell);
                    }
                    if let Some(p) = &mut precheck {
                        p.observe(&wb, false);
                    }
                }
                Frame::EndSheet(merged) => wb.end_sheet(&merged),
                Frame::Done => {
                    if let Some(p) = &mut precheck {
                        p.observe(&wb, true);
                    }
                    received.answer = Some(wb.finish());
                    break;
                }
                Frame::Refused(f) => {
                    received.answer = Some(Err(f));
                    break;
                }
            }
        }
        received.taken = taken;
    }
    if let Some(p) = &mut precheck {
        // No more rows are handed out: the rest come with the answer.
        p.counting = None;
    }
    let checked = match (&received.answer, precheck) {
        (Some(Ok(wb)), Some(precheck)) if !received.over_cap => precheck.run(wb),
        _ => None,
    };
    (received, checked)
}

/// How the bytes are packaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Container {
    Zip,
    Cfb,
    Other,
}

fn container(bytes: &[u8]) -> Container {
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        Container::Zip
    } else if bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        Container::Cfb
    } else {
        Container::Other
    }
}

fn unreadable(message: impl Into<String>) -> Finding {
    Finding::file(Code::FileUnreadable, message)
}

/// A part of the container that cannot be read or written back.
fn damaged(e: &dyn std::fmt::Display) -> Finding {
    unreadable(format!("文件已损坏（{e}），请重新保存后报送。"))
}

fn too_large(message: impl Into<String>) -> Finding {
    Finding::file(Code::TooLarge, message)
}

/// Reading the file needs more memory than the reader may use (`reader_memory_mb`).
fn memory_cap_exceeded(mb: u64) -> Finding {
    too_large(format!(
        "读取该文件需要的内存超过了上限（{mb} MB），文件过大或过于复杂（例如工作表的已用区域远大于实际内容）。请删除无关的行、列和工作表后重新保存，或分文件报送。"
    ))
}

/// A compression or encryption method a return may not use.
fn unsupported(method: &str) -> Finding {
    unreadable(format!(
        "文件使用了不支持的压缩或加密方式（{method}）。请取消密码、用 Excel 或 WPS 另存为 .xlsx 后再报送。"
    ))
}

/// Read a workbook in this process. Call only where a crash cannot hurt (the child).
pub fn read_in_process(bytes: &[u8], limits: &Limits) -> Result<Workbook, Finding> {
    let mut wb = Assembly::new(u64::MAX);
    read_into(bytes, limits, &mut wb)?;
    wb.finish()
}

/// [`read_in_process`], giving the cells to `sink` as they are read.
fn read_into(bytes: &[u8], limits: &Limits, sink: &mut dyn CellSink) -> Result<(), Finding> {
    if bytes.len() as u64 > limits.max_file_bytes {
        return Err(too_large(format!(
            "文件大小 {} 字节，超过上限 {} 字节。请删除无关的工作表、图片后重新保存，或分文件报送。",
            bytes.len(),
            limits.max_file_bytes
        )));
    }
    match container(bytes) {
        // Inflated on a thread of its own while calamine parses (for a large file), every
        // entry checked: a refusal of the unpacking is the answer, whatever calamine made of
        // the rest.
        Container::Zip => std::thread::scope(|scope| {
            let unpacking = unpack::unpack(scope, bytes, limits)?;
            let reader = unpacking.reader.clone();
            let read = if is_ods(bytes) {
                calamine::open_workbook_from_rs::<calamine::Ods<_>, _>(reader)
                    .map_err(|e| {
                        unreadable(format!(
                            "无法读取 .ods 文件（{e}），请另存为 .xlsx 后报送。"
                        ))
                    })
                    .and_then(|mut wb| {
                        // calamine does not report merged cells in .ods: find them in
                        // content.xml.
                        let merges = ods_merges(bytes);
                        collect(
                            &mut wb,
                            limits,
                            |_, name| Ok(merges.get(name).cloned().unwrap_or_default()),
                            sink,
                        )
                    })
            } else {
                calamine::open_workbook_from_rs::<calamine::Xlsx<_>, _>(reader)
                    .map_err(|e| {
                        unreadable(format!(
                            "文件不是有效的 Excel 工作簿（{e}）。请用 Excel 或 WPS 另存为 .xlsx 后报送。"
                        ))
                    })
                    .and_then(|mut wb| {
                        collect_xlsx(&mut wb, limits, &|| unpacking.reader.merges(), sink)
                    })
            };
            unpacking.finish().and(read)
        }),
        Container::Cfb => {
            if is_encrypted_ooxml(bytes) {
                return Err(unreadable(
                    "文件设置了打开密码，系统无法读取。请在 Excel 或 WPS 中取消密码（文件→信息→保护工作簿）后重新保存再报送。",
                ));
            }
            let mut wb: calamine::Xls<_> = calamine::open_workbook_from_rs(Cursor::new(bytes))
                .map_err(|e| match e {
                    calamine::XlsError::Password => {
                        unreadable("文件设置了打开密码，系统无法读取。请取消密码后重新保存再报送。")
                    }
                    e => unreadable(format!(
                        "无法读取 .xls 文件（{e}）。请用 Excel 或 WPS 另存为 .xlsx 后报送。"
                    )),
                })?;
            collect(
                &mut wb,
                limits,
                |wb, name| {
                    wb.merge_cells_by_sheet_name(name)
                        .map_err(|e| e.to_string())
                },
                sink,
            )
        }
        Container::Other => Err(unreadable(
            "文件不是 Excel 工作簿（.xlsx/.xls/.ods），可能是改了扩展名的其他文件。请用区里下发的模板填写，并在 Excel 或 WPS 中保存为 .xlsx 后报送。",
        )),
    }
}

fn is_ods(bytes: &[u8]) -> bool {
    let Ok(mut archive) = zip::ZipArchive::new(Cursor::new(bytes)) else {
        return false;
    };
    let Ok(mut entry) = archive.by_name("mimetype") else {
        return false;
    };
    let mut s = String::new();
    (&mut entry).take(200).read_to_string(&mut s).is_ok()
        && s.trim() == "application/vnd.oasis.opendocument.spreadsheet"
}

/// Merged ranges per sheet of an .ods file, from the spans in content.xml (streamed).
fn ods_merges(bytes: &[u8]) -> std::collections::HashMap<String, Vec<calamine::Dimensions>> {
    use quick_xml::events::{BytesStart, Event};
    fn attr(e: &BytesStart<'_>, key: &str) -> Option<String> {
        e.attributes()
            .flatten()
            .find(|a| a.key.local_name().as_ref() == key)
            .map(|a| a.value.into_owned())
    }
    fn num(e: &BytesStart<'_>, key: &str) -> u64 {
        attr(e, key)
            .and_then(|v| v.parse().ok())
            .unwrap_or(1)
            .max(1)
    }
    let mut out: std::collections::HashMap<String, Vec<calamine::Dimensions>> = Default::default();
    let Ok(mut archive) = zip::ZipArchive::new(Cursor::new(bytes)) else {
        return out;
    };
    let Ok(entry) = archive.by_name("content.xml") else {
        return out;
    };
    let mut reader = quick_xml::Reader::from_reader(std::io::BufReader::new(entry));
    let mut buf = Vec::new();
    let (mut sheet, mut row, mut col, mut row_repeat): (Option<String>, u64, u64, u64) =
        (None, 0, 0, 1);
    loop {
        let (e, empty) = match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => (e.into_owned(), false),
            Ok(Event::Empty(e)) => (e.into_owned(), true),
            Ok(Event::End(e)) => {
                match e.local_name().as_ref() {
                    "table-row" => row = row.saturating_add(row_repeat),
                    "table" => sheet = None,
                    _ => {}
                }
                buf.clear();
                continue;
            }
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => {
                buf.clear();
                continue;
            }
        };
        match e.local_name().as_ref() {
            "table" => {
                sheet = attr(&e, "name");
                row = 0;
            }
            "table-row" => {
                col = 0;
                row_repeat = num(&e, "number-rows-repeated");
                if empty {
                    row = row.saturating_add(row_repeat);
                }
            }
            local @ ("table-cell" | "covered-table-cell") => {
                let rs = num(&e, "number-rows-spanned");
                let cs = num(&e, "number-columns-spanned");
                if local == "table-cell"
                    && (rs > 1 || cs > 1)
                    && let Some(name) = &sheet
                {
                    // Spans past Excel's grid are clamped to it (1,048,576 rows, 16,384 columns).
                    let clamp_row = |v: u64| v.min(1_048_575) as u32;
                    let clamp_col = |v: u64| v.min(16_383) as u32;
                    out.entry(name.clone())
                        .or_default()
                        .push(calamine::Dimensions {
                            start: (clamp_row(row), clamp_col(col)),
                            end: (
                                clamp_row(row.saturating_add(rs - 1)),
                                clamp_col(col.saturating_add(cs - 1)),
                            ),
                        });
                }
                col = col.saturating_add(num(&e, "number-columns-repeated"));
            }
            _ => {}
        }
        buf.clear();
    }
    out
}

/// An encrypted .xlsx is a compound file holding an `EncryptedPackage` stream.
fn is_encrypted_ooxml(bytes: &[u8]) -> bool {
    let needle: Vec<u8> = "EncryptedPackage"
        .encode_utf16()
        .flat_map(|u| u.to_le_bytes())
        .collect();
    bytes.windows(needle.len()).any(|w| w == needle.as_slice())
}

/// Where a reader puts the cells of a workbook, sheet by sheet, as it reads them: a workbook
/// built in this process ([`Assembly`]), or frames sent to the parent ([`FrameWriter`]). Empty
/// cells are never given; every cell given is inside the limits ([`Bounds`]).
trait CellSink {
    fn sheet(&mut self, name: &str);
    fn cell(&mut self, row: u32, col: u32, cell: CellRef<'_>);
    fn end_sheet(&mut self, merged: &[Range]);
}

/// One sheet's limits, applied as its cells come: rows past `max_rows + 1000` are not kept
/// (the sheet is too large, reported by [`Bounds::finish`]); a column past Excel's last is a
/// damaged file.
struct Bounds {
    /// Rows from this one (0-based) on are not kept.
    limit: usize,
    /// The last row seen, kept or not (0-based).
    last_row: Option<u32>,
}

impl Bounds {
    fn new(limits: &Limits) -> Bounds {
        Bounds {
            limit: limits.max_rows + 1000,
            last_row: None,
        }
    }

    /// Whether the cell at (`row`, `col`) of sheet `name` is kept.
    fn admit(&mut self, name: &str, (row, col): (u32, u32)) -> Result<bool, Finding> {
        if col >= u32::from(crate::excel::MAX_COLS) {
            return Err(unreadable(format!(
                "工作表“{name}”有单元格超出了 Excel 的最后一列（XFD），文件已损坏。请用 Excel 或 WPS 打开后另存为 .xlsx 再报送。"
            )));
        }
        self.last_row = self.last_row.max(Some(row));
        Ok((row as usize) < self.limit)
    }

    fn finish(&self, name: &str) -> Result<(), Finding> {
        match self.last_row {
            Some(last) if last as usize >= self.limit => Err(too_large(format!(
                "工作表“{name}”有 {} 行，超过上限 {}。请删除多余的行或分文件报送。",
                u64::from(last) + 1,
                self.limit - 1000
            ))),
            _ => Ok(()),
        }
    }
}

/// A workbook put together from its cells as they come (in any order), one sheet at a time;
/// within `budget` bytes of cells, counting the empty ones a row holds before its last cell.
struct Assembly {
    sheets: Vec<Sheet>,
    /// Cells allowed in all: `budget` bytes' worth.
    slots_left: usize,
    /// A cell did not fit the budget: the workbook is refused ([`Assembly::finish`]).
    over_budget: bool,
    /// The budget, in bytes of cells.
    budget: u64,
    /// Every cell of each sheet so far came in the order of its rows: the rows before the
    /// last one begun are whole.
    ordered: bool,
    /// The row of the last cell placed in the current sheet.
    last_row: u32,
}

impl Assembly {
    fn new(budget: u64) -> Assembly {
        Assembly {
            sheets: Vec::new(),
            slots_left: usize::try_from(budget / std::mem::size_of::<Cell>() as u64)
                .unwrap_or(usize::MAX),
            over_budget: false,
            budget,
            ordered: true,
            last_row: 0,
        }
    }

    /// The workbook, or the finding that its cells would not fit the budget.
    fn finish(self) -> Result<Workbook, Finding> {
        if self.over_budget {
            // The budget is half the reader's memory cap (`Reading::start`): name the cap.
            return Err(memory_cap_exceeded(
                self.budget.saturating_mul(2) / (1024 * 1024),
            ));
        }
        Ok(Workbook {
            sheets: self.sheets,
        })
    }
}

impl CellSink for Assembly {
    fn sheet(&mut self, name: &str) {
        self.sheets.push(Sheet {
            name: name.to_string(),
            ..Sheet::default()
        });
        self.last_row = 0;
    }

    fn cell(&mut self, row: u32, col: u32, cell: CellRef<'_>) {
        self.place(row, col, cell.to_cell());
    }

    fn end_sheet(&mut self, merged: &[Range]) {
        if let Some(sheet) = self.sheets.last_mut() {
            sheet.merged = merged.to_vec();
        }
    }
}

impl Assembly {
    /// Put `cell` at (`row`, `col`) of the sheet begun last.
    fn place(&mut self, row: u32, col: u32, cell: Cell) {
        let Some(sheet) = self.sheets.last_mut() else {
            return;
        };
        self.ordered &= row >= self.last_row;
        self.last_row = row;
        // Columns past Excel's are never placed (the reader refuses them first).
        if self.over_budget || col >= u32::from(crate::excel::MAX_COLS) {
            return;
        }
        let (r, c) = (row as usize, col as usize);
        let new_rows = (r + 1).saturating_sub(sheet.rows.len());
        let new_cells = match sheet.rows.get(r) {
            Some(cells) => (c + 1).saturating_sub(cells.len()),
            None => c + 1,
        };
        // A row is a vector too: counted as one cell.
        match self.slots_left.checked_sub(new_rows + new_cells) {
            Some(left) => self.slots_left = left,
            None => {
                self.over_budget = true;
                return;
            }
        }
        if new_rows > 0 {
            sheet.rows.resize_with(r + 1, Vec::new);
        }
        let cells = &mut sheet.rows[r];
        if cells.len() <= c {
            cells.resize(c + 1, Cell::Empty);
        }
        cells[c] = cell;
    }
}

fn unreadable_sheet(name: &str, e: &dyn std::fmt::Display) -> Finding {
    unreadable(format!("工作表“{name}”无法读取（{e}），请重新保存后报送。"))
}

fn ranges(merged: Vec<calamine::Dimensions>) -> Vec<Range> {
    merged
        .into_iter()
        .map(|d| Range {
            first_row: d.start.0,
            first_col: d.start.1,
            last_row: d.end.0,
            last_col: d.end.1,
        })
        .collect()
}

/// Every sheet of an .xlsx, streamed cell by cell from its XML (no dense range in between).
/// `merges`: some part of the file read so far may hold merged cells (else none is looked
/// for in the sheet just read).
fn collect_xlsx<RS: Read + Seek>(
    wb: &mut calamine::Xlsx<RS>,
    limits: &Limits,
    merges: &dyn Fn() -> bool,
    sink: &mut dyn CellSink,
) -> Result<(), Finding> {
    let mut scratch = String::new();
    for name in wb.sheet_names() {
        sink.sheet(&name);
        let mut bounds = Bounds::new(limits);
        match wb.worksheet_cells_reader(&name) {
            Ok(mut cells) => {
                while let Some(cell) = cells.next_cell().map_err(|e| unreadable_sheet(&name, &e))? {
                    let value = cell_of_ref(cell.get_value(), &mut scratch);
                    let (row, col) = cell.get_position();
                    if value != CellRef::Empty && bounds.admit(&name, (row, col))? {
                        sink.cell(row, col, value);
                    }
                }
            }
            // A chart sheet: no cells (as calamine's own `worksheet_range` has it).
            Err(calamine::XlsxError::NotAWorksheet(_)) => {}
            Err(e) => return Err(unreadable_sheet(&name, &e)),
        }
        bounds.finish(&name)?;
        let merged = if merges() {
            wb.merge_cells_by_sheet_name(&name).unwrap_or_default()
        } else {
            Vec::new()
        };
        sink.end_sheet(&ranges(merged));
    }
    Ok(())
}

fn collect<R, RS>(
    wb: &mut R,
    limits: &Limits,
    merges: impl Fn(&mut R, &str) -> Result<Vec<calamine::Dimensions>, String>,
    sink: &mut dyn CellSink,
) -> Result<(), Finding>
where
    RS: Read + Seek,
    R: Reader<RS>,
    R::Error: std::fmt::Display,
{
    for name in wb.sheet_names() {
        let range = wb
            .worksheet_range(&name)
            .map_err(|e| unreadable_sheet(&name, &e))?;
        sink.sheet(&name);
        let mut bounds = Bounds::new(limits);
        // `used_cells` counts from the range's first cell.
        let (r0, c0) = range.start().unwrap_or((0, 0));
        let mut scratch = String::new();
        for (row, col, data) in range.used_cells() {
            let value = cell_of_data(data, &mut scratch);
            let at = (r0 + row as u32, c0 + col as u32);
            if value != CellRef::Empty && bounds.admit(&name, at)? {
                sink.cell(at.0, at.1, value);
            }
        }
        bounds.finish(&name)?;
        sink.end_sheet(&ranges(merges(wb, &name).unwrap_or_default()));
    }
    Ok(())
}

/// A cell as a reader gives it, its text borrowed (from calamine's, or from a scratch
/// `String` for a date or an error value): the child encodes it into its frame without a copy
/// of its own. The same variants in the same order as [`Cell`], so it is encoded as that
/// `Cell` would be, and the parent takes it as one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
enum CellRef<'a> {
    Empty,
    Text(&'a str),
    Number(f64),
    Bool(bool),
    Date(&'a str),
    Error(&'a str),
}

impl CellRef<'_> {
    fn to_cell(self) -> Cell {
        match self {
            CellRef::Empty => Cell::Empty,
            CellRef::Text(s) => Cell::Text(s.to_string()),
            CellRef::Number(n) => Cell::Number(n),
            CellRef::Bool(b) => Cell::Bool(b),
            CellRef::Date(s) => Cell::Date(s.to_string()),
            CellRef::Error(s) => Cell::Error(s.to_string()),
        }
    }
}

impl<'a> From<&'a Cell> for CellRef<'a> {
    fn from(cell: &'a Cell) -> Self {
        match cell {
            Cell::Empty => CellRef::Empty,
            Cell::Text(s) => CellRef::Text(s),
            Cell::Number(n) => CellRef::Number(*n),
            Cell::Bool(b) => CellRef::Bool(*b),
            Cell::Date(s) => CellRef::Date(s),
            Cell::Error(s) => CellRef::Error(s),
        }
    }
}

/// calamine's `Data` as a cell (a date or an error value written into `scratch`).
fn cell_of_data<'a>(data: &'a Data, scratch: &'a mut String) -> CellRef<'a> {
    match data {
        Data::Empty => CellRef::Empty,
        Data::Int(i) => CellRef::Number(*i as f64),
        Data::Float(f) => CellRef::Number(*f),
        Data::String(s) => CellRef::Text(s),
        Data::Bool(b) => CellRef::Bool(*b),
        Data::DateTime(dt) => date_time(dt, scratch),
        Data::DateTimeIso(s) => CellRef::Date(s),
        Data::DurationIso(s) => CellRef::Text(s),
        Data::Error(e) => error_value(e, scratch),
    }
}

/// [`cell_of_data`] for the cells reader's borrowed values.
fn cell_of_ref<'a>(data: &'a calamine::DataRef<'_>, scratch: &'a mut String) -> CellRef<'a> {
    use calamine::DataRef;
    match data {
        DataRef::Empty => CellRef::Empty,
        DataRef::Int(i) => CellRef::Number(*i as f64),
        DataRef::Float(f) => CellRef::Number(*f),
        DataRef::String(s) => CellRef::Text(s),
        DataRef::SharedString(s) => CellRef::Text(s),
        DataRef::Bool(b) => CellRef::Bool(*b),
        DataRef::DateTime(dt) => date_time(dt, scratch),
        DataRef::DateTimeIso(s) => CellRef::Date(s),
        DataRef::DurationIso(s) => CellRef::Text(s),
        DataRef::Error(e) => error_value(e, scratch),
    }
}

fn error_value<'a>(e: &calamine::CellErrorType, scratch: &'a mut String) -> CellRef<'a> {
    scratch.clear();
    let _ = std::fmt::Write::write_fmt(scratch, format_args!("{e}"));
    CellRef::Error(scratch)
}

fn date_time<'a>(dt: &calamine::ExcelDateTime, scratch: &'a mut String) -> CellRef<'a> {
    if dt.is_duration() {
        CellRef::Number(dt.as_f64())
    } else {
        let (y, mo, d, h, mi, s, _) = dt.to_ymd_hms_milli();
        scratch.clear();
        iso_date_time(scratch, y, mo, d, h, mi, s);
        CellRef::Date(scratch)
    }
}

/// `YYYY-MM-DDTHH:MM:SS` into `out`, as `format!("{y:04}-{mo:02}-…")` writes it, without the
/// formatting machinery (a roster has a date in every row).
fn iso_date_time(out: &mut String, y: u16, mo: u8, d: u8, h: u8, mi: u8, s: u8) {
    if y > 9999 || [mo, d, h, mi, s].iter().any(|&n| n > 99) {
        let _ = std::fmt::Write::write_fmt(
            out,
            format_args!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}"),
        );
        return;
    }
    let mut two = |n: u8, sep: Option<char>| {
        if let Some(sep) = sep {
            out.push(sep);
        }
        out.push(char::from(b'0' + n / 10 % 10));
        out.push(char::from(b'0' + n % 10));
    };
    two((y / 100 % 100) as u8, None);
    two((y % 100) as u8, None);
    two(mo, Some('-'));
    two(d, Some('-'));
    two(h, Some('T'));
    two(mi, Some(':'));
    two(s, Some(':'));
}

/// Entry point of the child: confine itself (memory cap), read, send the answer on stdout.
/// `confined`: the parent put it in a Job Object (Windows, [`crate::sandbox`]).
pub fn child_main(path: &Path, limits: &Limits, fault: Option<&str>, confined: bool) -> i32 {
    crate::sandbox::child_start(limits.reader_memory_mb, confined);
    answer(path, limits, fault, std::io::stdout().lock())
}

/// What the child does once confined: read `path` and send its SHA-256, then the workbook or
/// the finding, on `out`. The exit code.
fn answer(path: &Path, limits: &Limits, fault: Option<&str>, mut out: impl std::io::Write) -> i32 {
    // Not buffered: each frame is made whole, then written and flushed at once (FrameWriter).
    // The bytes' SHA-256 goes out first, on its own: the parent knows which bytes this child
    // read even when it is stopped later (time limit, memory cap, crash).
    let bytes = std::fs::read(path);
    let sha = match &bytes {
        Ok(b) => hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b)),
        Err(_) => NO_SHA.to_string(),
    };
    if std::io::Write::write_all(&mut out, sha.as_bytes())
        .and_then(|()| std::io::Write::flush(&mut out))
        .is_err()
    {
        return 3;
    }
    match fault.and_then(|f| fault_for(f, path)) {
        Some("panic") => panic!(
            "reader fault injected by {}",
            crate::settings::env::FAULT_READER
        ),
        // Never finishes: the parent's time limit must end it (and all it started).
        Some("hang") => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
        _ => {}
    }
    let mut frames = FrameWriter::new(out);
    let result = match bytes {
        Ok(bytes) => read_into(&bytes, limits, &mut frames),
        Err(e) => Err(unreadable(format!("文件无法打开（{e}）。"))),
    };
    if frames.finish(result) { 0 } else { 3 }
}

/// The fault injected (tests only) into the read of `path`: `TALLY_FAULT_READER` is a list,
/// comma-separated, of `panic` or `hang`, each for every file or, as `panic@NAME`, for a file
/// whose name contains NAME. The first that applies.
fn fault_for<'f>(faults: &'f str, path: &Path) -> Option<&'f str> {
    let name = path.file_name().map(|n| n.to_string_lossy());
    faults.split(',').find_map(|f| match f.split_once('@') {
        None => Some(f),
        Some((what, only)) => name
            .as_deref()
            .is_some_and(|n| n.contains(only))
            .then_some(what),
    })
}

/// What the child sends first when it could not read the file: as long as a SHA-256 in hex.
const NO_SHA: &str = "                                                                ";

/// The SHA-256 the child sent ahead of its answer, or None when it could not read the file.
fn sha_sent(first: &[u8]) -> Option<String> {
    first
        .iter()
        .all(u8::is_ascii_hexdigit)
        .then(|| String::from_utf8_lossy(first).into_owned())
}

/// Read a return through a child process of `exe` (the `tally` binary). Every outcome is a
/// workbook or a finding; nothing the file does can crash the caller.
pub fn read_sandboxed(
    exe: &Path,
    config_path: Option<&Path>,
    path: &Path,
    limits: &Limits,
) -> Result<Workbook, Finding> {
    Reading::start(exe, config_path, path, limits)
        .finish()
        .result
}

/// A reader child made by copying this process, when it runs no other thread (Unix): no
/// program to load and no settings to parse again. None: start `tally __read` instead.
#[cfg(unix)]
fn copied(
    path: &Path,
    limits: &Limits,
) -> Option<std::io::Result<(Confined, crate::sandbox::Polled)>> {
    let (path, limits) = (path.to_path_buf(), limits.clone());
    Confined::fork(move |out| {
        crate::sandbox::child_start(limits.reader_memory_mb, false);
        let fault = crate::settings::Environment::read().fault_reader;
        answer(&path, &limits, fault.as_deref(), out)
    })
}

/// What a reader child answered.
pub struct Answer {
    /// SHA-256 (lower-case hex) of the bytes the child read, when it could read the file.
    pub sha256: Option<String>,
    pub result: Result<Workbook, Finding>,
    /// The check of the workbook, when one was asked for ([`Reading::start_checked`]).
    pub checked: Option<Checked>,
    /// The process id of the child that read it (None: answered without one).
    pub reader: Option<u32>,
}

/// A check of the workbook to run as soon as it is put together, on the thread that takes
/// the child's answer: for a file read ahead, its check then runs beside the recording of
/// the file before it (both cores), not after it.
pub struct Precheck {
    pub plan: std::sync::Arc<crate::core::plan::Plan>,
    pub unit: crate::core::plan::Unit,
    pub now: chrono::DateTime<chrono_tz::Tz>,
    pub max_rows: usize,
}

/// A [`Precheck`] done: the return, for that unit and that moment.
pub struct Checked {
    pub unit: String,
    pub now: chrono::DateTime<chrono_tz::Tz>,
    pub ret: crate::core::returns::Return,
}

/// A [`Precheck`] at work while the child's answer comes: the roster's rows checked as they
/// arrive ([`RowsAhead`](crate::core::returns::RowsAhead)), the rest once the workbook is whole.
struct Prechecking {
    precheck: Precheck,
    ahead: Option<crate::core::returns::RowsAhead>,
    /// Where rows checked ahead go as they stand, in runs of [`ROWS_AHEAD_RUN`], while each
    /// counts ([`Reading::finish_with`]); None once one does not.
    counting: Option<std::sync::mpsc::Sender<Run>>,
    /// How many rows checked ahead were sent there.
    sent: usize,
}

/// Rows checked ahead are handed out in runs of this many ([`Reading::finish_with`]): a
/// return of fewer rows is handed out whole with its answer, as before.
pub const ROWS_AHEAD_RUN: usize = 2_048;

impl Precheck {
    fn context(&self) -> crate::core::returns::Context<'_> {
        crate::core::returns::Context {
            plan: &self.plan,
            unit: Some(&self.unit),
            now: self.now,
            max_rows: self.max_rows,
        }
    }
}

impl Prechecking {
    fn new(precheck: Precheck, counting: std::sync::mpsc::Sender<Run>) -> Self {
        Prechecking {
            precheck,
            ahead: Some(Default::default()),
            counting: Some(counting),
            sent: 0,
        }
    }

    /// Check the rows that can be of the workbook read so far (`ended`: all of it, read to its
    /// end), and hand out the next run of them. Once the workbook has ended, the rows after
    /// the last run go out too (to be written while the whole is checked), if any run went
    /// before them. A panic drops what was checked ahead (the check of the whole workbook
    /// then meets it again).
    fn observe(&mut self, wb: &Assembly, ended: bool) {
        let Some(mut ahead) = self.ahead.take() else {
            return;
        };
        let ctx = self.precheck.context();
        let observed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if ended {
                ahead.observe_ended(&wb.sheets, wb.ordered, &ctx);
            } else {
                ahead.observe(&wb.sheets, wb.ordered, &ctx);
            }
            ahead
        }));
        self.ahead = observed.ok();
        let (Some(ahead), Some(counting)) = (&mut self.ahead, &self.counting) else {
            self.counting = None;
            return;
        };
        let run = if ended && self.sent > 0 {
            1
        } else {
            ROWS_AHEAD_RUN
        };
        if ahead.checked() < self.sent + run {
            return;
        }
        match ahead.hand_out(self.sent) {
            Some(rows) => {
                self.sent += rows.len();
                if counting.send(rows).is_err() {
                    self.counting = None;
                }
            }
            None => self.counting = None,
        }
    }

    /// The check, or None when it panicked (intake then checks again where a panic is
    /// handled as always: the file's internal-error rejection).
    fn run(self, wb: &Workbook) -> Option<Checked> {
        let Prechecking {
            precheck, ahead, ..
        } = self;
        let ret = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            crate::core::returns::check_with(wb, &precheck.context(), ahead)
        }))
        .ok()?;
        Some(Checked {
            unit: precheck.unit.name,
            now: precheck.now,
            ret,
        })
    }
}

/// A reader child at work on one file: started now, its answer taken with [`Reading::finish`]
/// (the daemon starts the next files' children while it records the one before: both cores).
/// Dropped unfinished, the child is ended.
pub struct Reading {
    path: PathBuf,
    limits: Limits,
    state: ReadingState,
    /// Rows checked ahead, in runs, while each counts (a checked reading).
    counting: Option<CountingRows>,
}

/// Where the rows checked ahead come, in runs ([`Reading::finish_with`]).
type CountingRows = std::sync::mpsc::Receiver<Run>;

/// A run of rows checked ahead, shared with the check that handed it out.
type Run = std::sync::Arc<Vec<crate::core::returns::Row>>;

/// A run handed out empty: no rows came for this long ([`Reading::finish_with`]).
pub const ROWS_AHEAD_QUIET: Duration = Duration::from_secs(1);

/// Hand each run from `rows` to `counting` until they end or `deadline`; an empty run after
/// each [`ROWS_AHEAD_QUIET`] without one.
fn hand_out_until(
    rows: &CountingRows,
    deadline: Instant,
    counting: &mut dyn FnMut(&[crate::core::returns::Row]),
) {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rows.recv_timeout(left.min(ROWS_AHEAD_QUIET)) {
            Ok(run) => counting(&run),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) if !left.is_zero() => counting(&[]),
            Err(_) => return,
        }
    }
}

enum ReadingState {
    /// Answered before any child was needed (too large, cannot start one).
    Done(Result<Workbook, Finding>),
    Running(Box<Running>),
    /// A copy of this process at work ([`copied`]): its answer is taken on the thread that
    /// finishes the reading.
    #[cfg(unix)]
    Copied(Box<Copied>),
    /// Sent to a reader that stays up ([`server`]), answering until the deadline.
    Served(Box<server::Server>, Instant),
    Finished,
}

struct Running {
    confined: Confined,
    out_thread: std::thread::JoinHandle<(Received, Option<Checked>)>,
    err_thread: std::thread::JoinHandle<Vec<u8>>,
    /// Closed (never sent on) when the child's stdout ends.
    eof: std::sync::mpsc::Receiver<()>,
    deadline: Instant,
}

impl Reading {
    /// Start reading `path` in a child, under `limits` (its time limit counts from now).
    pub fn start(exe: &Path, config_path: Option<&Path>, path: &Path, limits: &Limits) -> Reading {
        Self::start_with(exe, config_path, path, limits, None)
    }

    /// [`Reading::start`], and check the workbook as soon as it is there ([`Precheck`]).
    pub fn start_checked(
        exe: &Path,
        config_path: Option<&Path>,
        path: &Path,
        limits: &Limits,
        precheck: Precheck,
    ) -> Reading {
        Self::start_with(exe, config_path, path, limits, Some(precheck))
    }

    fn start_with(
        exe: &Path,
        config_path: Option<&Path>,
        path: &Path,
        limits: &Limits,
        precheck: Option<Precheck>,
    ) -> Reading {
        let done = |r| Reading {
            path: path.to_path_buf(),
            limits: limits.clone(),
            state: ReadingState::Done(r),
            counting: None,
        };
        let (precheck, counting) = match precheck {
            Some(p) => {
                let (tx, rx) = std::sync::mpsc::channel();
                (Some(Prechecking::new(p, tx)), Some(rx))
            }
            None => (None, None),
        };
        let size = match std::fs::metadata(path) {
            Ok(m) if m.len() > limits.max_file_bytes => {
                return done(Err(too_large(format!(
                    "文件大小 {} 字节，超过上限 {} 字节。请删除无关的工作表、图片后重新保存，或分文件报送。",
                    m.len(),
                    limits.max_file_bytes
                ))));
            }
            Ok(m) => m.len(),
            Err(e) => return done(Err(unreadable(format!("文件无法打开（{e}）。")))),
        };
        // The child's answer is bounded like the child itself: a workbook whose cells would
        // not fit in half the reader's memory cap is too large, and the parent never holds more.
        let out_cap = limits.reader_memory_mb.saturating_mul(1024 * 1024) / 2;
        let deadline = Instant::now() + Duration::from_secs(limits.reader_seconds);
        // A copy of this process when it runs no other thread; else a small file goes to a
        // reader that stays up for the next files; else a child of its own.
        reap_later(None);
        #[cfg(unix)]
        let precheck = match copied(path, limits) {
            Some(Ok((confined, mut pipes))) => {
                pipes.until(deadline);
                return Reading {
                    path: path.to_path_buf(),
                    limits: limits.clone(),
                    state: ReadingState::Copied(Box::new(Copied {
                        confined,
                        pipes,
                        out_cap,
                        deadline,
                        precheck,
                    })),
                    counting,
                };
            }
            Some(Err(e)) => return done(Err(cannot_start(path, &e))),
            None => precheck,
        };
        let mut precheck = precheck;
        if let Some(server) =
            server::Server::send(exe, config_path, path, size, limits, out_cap, &mut precheck)
        {
            return Reading {
                path: path.to_path_buf(),
                limits: limits.clone(),
                state: ReadingState::Served(Box::new(server), deadline),
                counting,
            };
        }
        let started = {
            let mut cmd = Command::new(exe);
            if let Some(c) = config_path {
                cmd.arg("--config").arg(c);
            }
            // The limits on the command line: the child need not parse tally.toml.
            cmd.arg("-q")
                .arg(CHILD_COMMAND)
                .arg("--limits")
                .arg(limits.to_arg())
                .arg(path);
            Confined::spawn(&mut cmd, limits.reader_memory_mb)
        };
        let (confined, pipes) = match started {
            Ok(c) => c,
            Err(e) => return done(Err(cannot_start(path, &e))),
        };
        let (mut stdout, stderr) = (pipes.stdout, pipes.stderr);
        // The end of the child's stdout (it exits, or closes it) wakes the parent at once: a
        // small return's read takes a few milliseconds, less than any polling interval.
        let (eof_tx, eof) = std::sync::mpsc::channel::<()>();
        let out_thread = std::thread::spawn(move || {
            let answer = receive(&mut stdout, out_cap, precheck);
            drop(eof_tx);
            answer
        });
        // Drained to its end, so the child never blocks on a full pipe; its tail is kept.
        let err_thread = std::thread::spawn(move || crate::sandbox::said_by(stderr));
        Reading {
            path: path.to_path_buf(),
            limits: limits.clone(),
            state: ReadingState::Running(Box::new(Running {
                confined,
                out_thread,
                err_thread,
                eof,
                deadline,
            })),
            counting,
        }
    }

    /// Wait for the child's answer (until its time limit at most).
    pub fn finish(self) -> Answer {
        self.finish_with(|_| {})
    }

    /// [`Reading::finish`], handing `counting` the rows checked ahead as they come, in runs
    /// of [`ROWS_AHEAD_RUN`] (on this thread, while the child still reads): the first rows of
    /// the return as it will count, should it be accepted with them ([`Precheck`]; the
    /// answer's check says). None come once a row does not count, nor for a return of fewer
    /// rows than a run. An empty run says that none came for [`ROWS_AHEAD_QUIET`].
    pub fn finish_with(mut self, mut counting: impl FnMut(&[crate::core::returns::Row])) -> Answer {
        let rows = self.counting.take();
        let state = std::mem::replace(&mut self.state, ReadingState::Finished);
        // Each run as it comes: until the rows end, or the reading's time limit.
        let mut hand_out = |deadline: Instant| {
            if let Some(rows) = &rows {
                hand_out_until(rows, deadline, &mut counting);
            }
        };
        match &state {
            ReadingState::Running(running) => hand_out(running.deadline),
            ReadingState::Served(_, deadline) => hand_out(*deadline),
            _ => {}
        }
        match state {
            ReadingState::Done(result) => Answer {
                sha256: None,
                result,
                checked: None,
                reader: None,
            },
            ReadingState::Running(running) => running.finish(&self.path, &self.limits),
            #[cfg(unix)]
            ReadingState::Copied(copied) => {
                copied.finish(&self.path, &self.limits, rows, &mut counting)
            }
            ReadingState::Served(server, deadline) => match server.finish(deadline) {
                server::Served::Answered { reply, reader } => {
                    let (received, checked) = *reply;
                    Answer {
                        result: match received.answer {
                            Some(result) if !received.over_cap => result,
                            _ => Err(over_cap()),
                        },
                        sha256: received.sha256,
                        checked,
                        reader: Some(reader),
                    }
                }
                server::Served::Ended {
                    status,
                    received,
                    err,
                    confined,
                } => judge(
                    status,
                    received,
                    None,
                    &err,
                    &confined,
                    &self.path,
                    &self.limits,
                ),
            },
            ReadingState::Finished => unreachable!("a reading is finished once"),
        }
    }
}

impl Drop for Reading {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.state, ReadingState::Finished) {
            ReadingState::Running(running) => {
                let mut running = *running;
                running.confined.kill();
                let _ = running.out_thread.join();
                let _ = running.err_thread.join();
            }
            #[cfg(unix)]
            ReadingState::Copied(mut copied) => copied.confined.kill(),
            ReadingState::Served(server, _) => server.end(),
            _ => {}
        }
    }
}

/// The finding for a reader child that could not be started.
fn cannot_start(path: &Path, e: &std::io::Error) -> Finding {
    tracing::error!(file = %path.display(), error = %e, "cannot start the reader child in its sandbox");
    Finding::file(
        Code::InternalError,
        format!("系统无法启动读取程序（{e}），文件已保留，请联系区安监局处理。"),
    )
}

/// A reader child made by copying this process ([`copied`]): no thread takes its pipes; the
/// one that finishes the reading does, watching both until the deadline.
#[cfg(unix)]
struct Copied {
    confined: Confined,
    pipes: crate::sandbox::Polled,
    out_cap: u64,
    deadline: Instant,
    precheck: Option<Prechecking>,
}

#[cfg(unix)]
impl Copied {
    /// The answer, taken on this thread; with `rows`, on a thread of its own while this one
    /// hands the rows checked ahead to `counting` as they come.
    fn finish(
        self,
        path: &Path,
        limits: &Limits,
        rows: Option<CountingRows>,
        counting: &mut dyn FnMut(&[crate::core::returns::Row]),
    ) -> Answer {
        let Copied {
            mut confined,
            mut pipes,
            out_cap,
            deadline,
            precheck,
        } = self;
        // Past the deadline a read fails: the answer so far is not whole, and the child is
        // ended below. Rows checked ahead are handed out here while a thread of its own takes
        // the answer; they end with it.
        let taken = match (rows, precheck) {
            (Some(rows), Some(precheck)) => std::thread::scope(|scope| {
                let pipes = &mut pipes;
                let taking = std::thread::Builder::new()
                    .spawn_scoped(scope, move || receive(pipes, out_cap, Some(precheck)))
                    .ok()?;
                hand_out_until(&rows, deadline, counting);
                Some(
                    taking
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                )
            }),
            (_, precheck) => Some(receive(&mut pipes, out_cap, precheck)),
        };
        // No thread to be had: taken here, unchecked (intake checks the whole workbook).
        let (mut out, checked) = taken.unwrap_or_else(|| receive(&mut pipes, out_cap, None));
        if !out.over_cap
            && let Some(result) = out.answer.take()
        {
            return answered(confined, out.sha256, result, checked);
        }
        let status = wait_exit(&mut confined, deadline);
        let err = pipes.said();
        judge(status, out, checked, &err, &confined, path, limits)
    }
}

/// A child's whole answer: it stands on its own, and the child's exit (a few tenths of a
/// millisecond for its teardown) is collected later ([`reap_later`]), not waited for.
fn answered(
    confined: Confined,
    sha256: Option<String>,
    result: Result<Workbook, Finding>,
    checked: Option<Checked>,
) -> Answer {
    let reader = Some(confined.id());
    reap_later(Some(confined));
    Answer {
        sha256,
        result,
        checked,
        reader,
    }
}

/// Reader children whose answer was whole but which had not exited yet: each is collected
/// once it has, when a later reading starts or ends (or with this process).
static UNREAPED: std::sync::Mutex<Vec<Confined>> = std::sync::Mutex::new(Vec::new());

/// Keep `confined` (when it still runs) to be collected later; collect those that exited.
fn reap_later(confined: Option<Confined>) {
    let mut unreaped = UNREAPED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    unreaped.extend(confined);
    unreaped.retain_mut(|c| matches!(c.try_wait(), Ok(None)));
}

impl Running {
    fn finish(self, path: &Path, limits: &Limits) -> Answer {
        let Running {
            mut confined,
            out_thread,
            err_thread,
            eof,
            deadline,
        } = self;
        // Nothing is ever sent: the channel closes when the stdout thread ends.
        let ended = eof.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            == Err(std::sync::mpsc::RecvTimeoutError::Disconnected);
        // Its stdout is closed: the answer is all there. A child still answering at its time
        // limit is ended first (its stdout closes then), below.
        let mut out_thread = Some(out_thread);
        let mut taken = None;
        if ended && let Some(thread) = out_thread.take() {
            let (mut out, checked) = thread.join().unwrap_or_default();
            if !out.over_cap
                && let Some(result) = out.answer.take()
            {
                // Its stderr thread ends with the child's stderr, unwaited for.
                drop(err_thread);
                return answered(confined, out.sha256, result, checked);
            }
            taken = Some((out, checked));
        }
        let status = wait_exit(&mut confined, deadline);
        let (out, checked) = taken
            .or_else(|| out_thread.and_then(|t| t.join().ok()))
            .unwrap_or_default();
        let err = err_thread.join().unwrap_or_default();
        judge(status, out, checked, &err, &confined, path, limits)
    }
}

/// The exit status of a child whose answer has ended, waited for until `deadline`; None: it
/// was still running then, and has been ended. An exit takes a fraction of a millisecond to
/// a few: look again soon, then less often.
fn wait_exit(confined: &mut Confined, deadline: Instant) -> Option<std::process::ExitStatus> {
    let mut pause = Duration::from_micros(20);
    loop {
        match confined.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() >= deadline => {
                confined.kill();
                return None;
            }
            Ok(None) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(1));
            }
            Err(_) => return None,
        }
    }
}

/// A child's answer, from how it ended (`status`; None: ended at its time limit), what it
/// sent (`out`) and what it said (`err`).
fn judge(
    status: Option<std::process::ExitStatus>,
    out: Received,
    checked: Option<Checked>,
    err: &[u8],
    confined: &Confined,
    path: &Path,
    limits: &Limits,
) -> Answer {
    let sha256 = out.sha256;
    let reader = Some(confined.id());
    let refused = |f| Answer {
        sha256: sha256.clone(),
        result: Err(f),
        checked: None,
        reader,
    };
    let Some(status) = status else {
        return refused(timed_out(limits));
    };
    if status.success() && out.over_cap {
        return refused(over_cap());
    }
    if let Some(result) = out.answer
        && !out.over_cap
    {
        return Answer {
            sha256,
            result,
            checked,
            reader,
        };
    }
    let stderr_text = String::from_utf8_lossy(err);
    tracing::warn!(file = %path.display(), status = %status, stderr = %stderr_text.trim(), "reader child failed");
    if !status.success() && confined.out_of_memory(&status, &stderr_text) {
        return refused(memory_cap_exceeded(limits.reader_memory_mb));
    }
    if status.code() == Some(101) {
        return refused(Finding::file(
            Code::InternalError,
            "系统读取此文件时发生内部错误，文件已保留。请联系区安监局处理，或用 Excel/WPS 另存为 .xlsx 后重新报送。",
        ));
    }
    refused(unreadable(
        "读取该文件时超出了内存上限或遇到损坏的数据，无法读取。请用 Excel 或 WPS 打开后另存为 .xlsx 再报送。",
    ))
}

/// The finding of a read that ran past the time limit.
fn timed_out(limits: &Limits) -> Finding {
    too_large(format!(
        "读取该文件超过了 {} 秒的时间上限，文件过大或过于复杂。请删除无关内容后重新保存，或分文件报送。",
        limits.reader_seconds
    ))
}

/// The finding of an answer larger than the parent takes.
fn over_cap() -> Finding {
    too_large("文件内容过多（读出的数据超过了内存上限），请删除无关的工作表或分文件报送。")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn limits() -> Limits {
        Limits::default()
    }

    /// A zip of one deflated entry of `len` bytes whose headers declare `declared` bytes.
    fn lying_zip(len: usize, declared: u32) -> Vec<u8> {
        let mut buf = Cursor::new(Vec::new());
        let mut w = zip::ZipWriter::new(&mut buf);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        w.start_file("xl/workbook.xml", options).unwrap();
        w.write_all(&vec![b'a'; len]).unwrap();
        w.finish().unwrap();
        let mut bytes = buf.into_inner();
        // The uncompressed size: offset 22 of the local header, 24 of the central header.
        for (signature, offset) in [
            ([0x50, 0x4b, 0x03, 0x04], 22),
            ([0x50, 0x4b, 0x01, 0x02], 24),
        ] {
            let at = bytes.windows(4).position(|w| w == signature).unwrap() + offset;
            bytes[at..at + 4].copy_from_slice(&declared.to_le_bytes());
        }
        bytes
    }

    #[test]
    fn an_entry_that_inflates_past_its_declared_size_is_too_large() {
        let f = check_zip(&lying_zip(100_000, 1_000), &limits()).unwrap_err();
        assert_eq!(f.code, Code::TooLarge, "{}", f.message);
        assert!(f.message.contains("声明的大小"), "{}", f.message);
    }

    #[test]
    fn an_entry_shorter_than_declared_is_damaged_not_a_bomb() {
        let f = check_zip(&lying_zip(1_000, 2_000), &limits()).unwrap_err();
        assert_eq!(f.code, Code::FileUnreadable, "{}", f.message);
        check_zip(&lying_zip(1_000, 1_000), &limits()).unwrap();
    }

    /// The child's answer survives the pipe's framing with every kind of cell.
    #[test]
    fn the_child_answer_round_trips_frame_by_frame() {
        let sheet = Sheet {
            name: "培训台账".into(),
            rows: vec![
                vec![Cell::Empty, Cell::Text("张伟".into()), Cell::Number(-0.5)],
                vec![],
                vec![
                    Cell::Bool(true),
                    Cell::Date("2020-05-12".into()),
                    Cell::Error("#DIV/0!".into()),
                ],
            ],
            merged: vec![Range {
                first_row: 1,
                first_col: 0,
                last_row: 2,
                last_col: 3,
            }],
        };
        let wb = Workbook {
            sheets: vec![sheet],
        };
        // Sent as the child sends it (more cells than one frame holds, in a second sheet),
        // taken as the parent takes it.
        let mut wb = wb;
        let long = Sheet {
            name: "名单".into(),
            rows: (0..FRAME_CELLS as u32 + 10)
                .map(|r| vec![Cell::Empty, Cell::Number(f64::from(r))])
                .collect(),
            merged: Vec::new(),
        };
        wb.sheets.push(long);
        let sent = |result: Result<(), Finding>, wb: &Workbook| {
            let mut out = NO_SHA.as_bytes().to_vec();
            let mut frames = FrameWriter::new(&mut out);
            for sheet in &wb.sheets {
                frames.sheet(&sheet.name);
                for (r, row) in sheet.rows.iter().enumerate() {
                    for (c, cell) in row.iter().enumerate() {
                        if *cell != Cell::Empty {
                            frames.cell(r as u32, c as u32, cell.into());
                        }
                    }
                }
                frames.end_sheet(&sheet.merged);
            }
            assert!(frames.finish(result));
            out
        };
        // The cells' frame begins as postcard begins `FrameOut::Cells`.
        let empty = postcard::to_allocvec(&FrameOut::Cells(&[])).unwrap();
        assert_eq!(
            empty,
            postcard::to_allocvec(&(CELLS_VARIANT, 0u64)).unwrap()
        );
        let out = sent(Ok(()), &wb);
        let received = receive(out.as_slice(), u64::MAX, None).0;
        assert_eq!(received.sha256, None);
        assert_eq!(received.answer.unwrap().unwrap(), wb);
        // A refusal voids the cells sent before it.
        let f = too_large("过大");
        let received = receive(sent(Err(f.clone()), &wb).as_slice(), u64::MAX, None).0;
        assert_eq!(received.answer.unwrap().unwrap_err(), f);
        // More than the parent takes: cut off, no answer.
        let received = receive(out.as_slice(), 1000, None).0;
        assert!(received.over_cap && received.answer.is_none());
        // Cut short (the child died): no answer.
        let received = receive(&out[..out.len() - 3], u64::MAX, None).0;
        assert!(!received.over_cap && received.answer.is_none());
        // Cells that would take more memory than allowed (each number sent in ~12 bytes takes
        // a 32-byte cell, and the empty cell before it another): too large.
        let received = receive(out.as_slice(), 100_000, None).0;
        assert_eq!(received.answer.unwrap().unwrap_err().code, Code::TooLarge);
    }

    #[test]
    fn dates_are_written_as_format_writes_them() {
        for (y, mo, d, h, mi, s) in [
            (2020, 5, 12, 0, 0, 0),
            (1900, 1, 1, 23, 59, 59),
            (9999, 12, 31, 7, 8, 9),
        ] {
            let mut written = String::new();
            iso_date_time(&mut written, y, mo, d, h, mi, s);
            assert_eq!(
                written,
                format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}")
            );
        }
    }

    #[test]
    fn injected_faults_apply_to_every_file_or_to_the_named_ones() {
        let a = Path::new("/w/单位/crash-a.xlsx");
        let b = Path::new("/w/单位/b.xlsx");
        assert_eq!(fault_for("panic", a), Some("panic"));
        assert_eq!(fault_for("panic@crash,hang@b.x", a), Some("panic"));
        assert_eq!(fault_for("panic@crash,hang@b.x", b), Some("hang"));
        assert_eq!(fault_for("panic@crash", b), None);
    }

    #[test]
    fn limits_go_to_the_child_on_its_command_line() {
        let limits = Limits {
            max_file_bytes: 1,
            max_rows: 2,
            reader_memory_mb: 3,
            reader_seconds: 4,
            zip_max_entries: 5,
            zip_max_inflated_bytes: 6,
            zip_max_ratio: 7,
        };
        assert_eq!(limits.to_arg(), "1,2,3,4,5,6,7");
        let back = Limits::from_arg(&limits.to_arg()).unwrap();
        assert_eq!(back.to_arg(), limits.to_arg());
        for bad in [
            "1,2,3,4,5,6",
            "1,2,3,4,5,6,7,8",
            "1,2,x,4,5,6,7",
            "0,2,3,4,5,6,7",
            "",
        ] {
            assert!(Limits::from_arg(bad).is_none(), "{bad}");
        }
    }

    /// A sheet's rows past the limit are not kept but counted; a column past XFD is a
    /// damaged file.
    #[test]
    fn bounds_keep_rows_within_the_limit_and_refuse_columns_past_xfd() {
        let limits = Limits {
            max_rows: 10,
            ..Limits::default()
        };
        let mut b = Bounds::new(&limits);
        assert_eq!(b.admit("s", (1009, 16_383)), Ok(true));
        b.finish("s").unwrap();
        assert_eq!(b.admit("s", (1010, 0)), Ok(false));
        assert_eq!(b.finish("s").unwrap_err().code, Code::TooLarge);
        let f = b.admit("s", (0, 16_384)).unwrap_err();
        assert_eq!(f.code, Code::FileUnreadable);
        assert!(f.message.contains("XFD"), "{}", f.message);
    }

    /// The plan's return template for one unit: a workbook with every kind of sheet.
    fn template() -> Vec<u8> {
        let cats = vec!["企业主要负责人".to_string()];
        let units = vec!["西兴街道".to_string()];
        crate::template::render(&crate::template::TemplateSpec {
            plan_title: "计划",
            year: 2020,
            unit: Some("西兴街道"),
            month: None,
            units: &units,
            categories: &cats,
            instructions: "说明",
        })
        .unwrap()
    }

    /// Entries are inflated once and handed to calamine stored: the same workbook either way.
    #[test]
    fn a_stored_copy_reads_like_the_original() {
        let bytes = template();
        let limits = limits();
        std::thread::scope(|scope| {
            let unpacking = unpack::unpack(scope, &bytes, &limits).unwrap();
            let mut a: calamine::Xlsx<_> =
                calamine::open_workbook_from_rs(Cursor::new(&bytes)).unwrap();
            let mut b: calamine::Xlsx<_> =
                calamine::open_workbook_from_rs(unpacking.reader.clone()).unwrap();
            assert_eq!(a.sheet_names(), b.sheet_names());
            for name in a.sheet_names() {
                assert_eq!(
                    a.worksheet_range(&name).unwrap(),
                    b.worksheet_range(&name).unwrap(),
                    "{name}"
                );
            }
            unpacking.finish().unwrap();
        });
    }

    /// The streamed .xlsx reader gives the cells and merged ranges calamine's ranges give, and
    /// looks for merged cells only in a file that has some.
    #[test]
    fn streamed_cells_are_the_ranges_cells() {
        let template = template();
        let mut plain = rust_xlsxwriter::Workbook::new();
        let ws = plain.add_worksheet();
        ws.write_string(2, 3, "张伟").unwrap();
        ws.write_number(5, 0, 1.5).unwrap();
        ws.write_boolean(5, 7, true).unwrap();
        let plain = plain.save_to_buffer().unwrap();
        let mut merged = rust_xlsxwriter::Workbook::new();
        let ws = merged.add_worksheet();
        ws.merge_range(1, 1, 2, 3, "合并", &rust_xlsxwriter::Format::new())
            .unwrap();
        ws.write_string(4, 0, "下面").unwrap();
        let merged = merged.save_to_buffer().unwrap();
        for (bytes, has_merges) in [(template, None), (plain, Some(false)), (merged, Some(true))] {
            let l = limits();
            let (streamed, merges) = std::thread::scope(|scope| {
                let unpacking = unpack::unpack(scope, &bytes, &l).unwrap();
                let mut wb: calamine::Xlsx<_> =
                    calamine::open_workbook_from_rs(unpacking.reader.clone()).unwrap();
                let mut streamed = Assembly::new(u64::MAX);
                let merges = || unpacking.reader.merges();
                collect_xlsx(&mut wb, &limits(), &merges, &mut streamed).unwrap();
                let merges = unpacking.reader.merges();
                unpacking.finish().unwrap();
                (streamed, merges)
            });
            if let Some(m) = has_merges {
                assert_eq!(merges, m);
            }
            let streamed = streamed.finish().unwrap();
            let mut wb: calamine::Xlsx<_> =
                calamine::open_workbook_from_rs(Cursor::new(&bytes)).unwrap();
            let mut ranged = Assembly::new(u64::MAX);
            collect(
                &mut wb,
                &limits(),
                |wb, name| {
                    wb.merge_cells_by_sheet_name(name)
                        .map_err(|e| e.to_string())
                },
                &mut ranged,
            )
            .unwrap();
            let ranged = ranged.finish().unwrap();
            assert_eq!(streamed, ranged);
            assert!(streamed.sheets.iter().any(|s| !s.rows.is_empty()));
        }
    }

    #[test]
    fn a_sheet_past_the_row_limit_is_too_large() {
        let mut book = rust_xlsxwriter::Workbook::new();
        let ws = book.add_worksheet();
        ws.write_string(0, 0, "序号").unwrap();
        ws.write_string(1_500, 0, "末行").unwrap();
        let bytes = book.save_to_buffer().unwrap();
        let small = Limits {
            max_rows: 100,
            ..limits()
        };
        let f = read_in_process(&bytes, &small).unwrap_err();
        assert_eq!(f.code, Code::TooLarge, "{}", f.message);
        assert!(f.message.contains("1501 行"), "{}", f.message);
        read_in_process(&bytes, &limits()).unwrap();
    }

    #[test]
    fn plain_text_is_not_a_workbook() {
        let f = read_in_process(b"hello, this is not excel", &limits()).unwrap_err();
        assert_eq!(f.code, Code::FileUnreadable);
    }

    #[test]
    fn a_zip_bomb_is_refused_before_parsing() {
        let mut buf = Cursor::new(Vec::new());
        {
            let mut z = zip::ZipWriter::new(&mut buf);
            let opts = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated);
            z.start_file("xl/worksheets/sheet1.xml", opts).unwrap();
            let zeros = vec![0u8; 1024 * 1024];
            for _ in 0..64 {
                z.write_all(&zeros).unwrap();
            }
            z.finish().unwrap();
        }
        let f = read_in_process(buf.get_ref(), &limits()).unwrap_err();
        assert_eq!(f.code, Code::TooLarge, "{}", f.message);
    }

    /// A sheet large enough to be inflated on a thread of its own while calamine parses it
    /// keeps its merged cells (they follow its cells, maybe in a piece inflated later).
    #[test]
    fn a_large_sheets_merged_cells_are_found() {
        let mut book = rust_xlsxwriter::Workbook::new();
        let ws = book.add_worksheet();
        for r in 0..30_000u32 {
            for c in 0..4u16 {
                ws.write_string(r, c, format!("第{r}行第{c}列")).unwrap();
            }
        }
        ws.merge_range(
            30_001,
            1,
            30_002,
            2,
            "合并",
            &rust_xlsxwriter::Format::new(),
        )
        .unwrap();
        let bytes = book.save_to_buffer().unwrap();
        let wb = read_in_process(&bytes, &limits()).unwrap();
        assert_eq!(wb.sheets[0].rows.len(), 30_002);
        assert_eq!(
            wb.sheets[0].merged,
            vec![Range {
                first_row: 30_001,
                first_col: 1,
                last_row: 30_002,
                last_col: 2
            }]
        );
    }

    #[test]
    fn too_many_entries_are_refused() {
        let mut buf = Cursor::new(Vec::new());
        {
            let mut z = zip::ZipWriter::new(&mut buf);
            let opts = zip::write::SimpleFileOptions::default();
            for i in 0..50 {
                z.start_file(format!("f{i}"), opts).unwrap();
            }
            z.finish().unwrap();
        }
        let mut l = limits();
        l.zip_max_entries = 10;
        let f = check_zip(buf.get_ref(), &l).unwrap_err();
        assert_eq!(f.code, Code::TooLarge);
    }

    #[test]
    fn the_template_reads_back() {
        let bytes = template();
        let wb = read_in_process(&bytes, &limits()).unwrap();
        let names: Vec<_> = wb.sheets.iter().map(|s| s.name.as_str()).collect();
        assert!(names.contains(&"培训台账"), "{names:?}");
    }
}
