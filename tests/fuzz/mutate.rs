//! The returns fuzzer's mutator: from a valid return's bytes and a seed, one deterministic
//! hostile variant (bit flips, truncation, zip entries dropped / duplicated / swapped, XML of
//! the sheet, sharedStrings, styles and workbook parts broken). Bytes in, bytes out: no disk,
//! no clock. Shared by `tests/fuzz.rs` and `examples/fuzz_returns.rs` through `#[path]`.

#![allow(dead_code)]

use std::io::{Cursor, Read, Write};

/// SplitMix64: small, seedable, the same on every platform.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (0 when n is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// The seed of mutant `index` in a run seeded with `seed`: mutants are independent, so any one
/// can be regenerated (and a run split over threads) from (seed, index) alone.
pub fn mutant_seed(seed: u64, index: u64) -> u64 {
    Rng::new(seed ^ index.wrapping_mul(0xA076_1D64_78BD_642F)).next_u64()
}

/// One entry of a zip container, inflated.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub data: Vec<u8>,
}

/// The entries of a zip container, in order; None when it is not one.
pub fn unzip(bytes: &[u8]) -> Option<Vec<Entry>> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).ok()?;
    let mut out = Vec::new();
    for i in 0..archive.len() {
        let mut f = archive.by_index(i).ok()?;
        let name = f.name().ok()?.into_owned();
        let mut data = Vec::new();
        f.read_to_end(&mut data).ok()?;
        out.push(Entry { name, data });
    }
    Some(out)
}

/// Write entries as a zip container (`mimetype` stored, the rest deflated). Duplicate names,
/// which the zip crate refuses to write, are written under a placeholder of the same length
/// and patched back into the headers afterwards.
pub fn rezip(entries: &[Entry]) -> Vec<u8> {
    let mut seen = std::collections::HashSet::new();
    let mut patches: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (i, e) in entries.iter().enumerate() {
        let method = if e.name == "mimetype" {
            zip::CompressionMethod::Stored
        } else {
            zip::CompressionMethod::Deflated
        };
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(method)
            .last_modified_time(zip::DateTime::default());
        let name = if seen.insert(e.name.clone()) || e.name.len() < 6 {
            e.name.clone()
        } else {
            // Same byte length, unlikely anywhere else in the container.
            let tag = format!("~{i:04}~");
            let placeholder = format!("{tag}{}", "~".repeat(e.name.len() - tag.len()));
            patches.push((
                placeholder.clone().into_bytes(),
                e.name.clone().into_bytes(),
            ));
            placeholder
        };
        if w.start_file(name, options).is_err() {
            continue;
        }
        let _ = w.write_all(&e.data);
    }
    let mut bytes = w
        .finish()
        .map(|c| c.into_inner())
        .unwrap_or_else(|_| Vec::new());
    for (from, to) in patches {
        let mut at = 0;
        while let Some(p) = find(&bytes[at..], &from) {
            bytes[at + p..at + p + to.len()].copy_from_slice(&to);
            at += p + to.len();
        }
    }
    bytes
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > hay.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// All start offsets of `needle` in `hay`.
fn find_all(hay: &[u8], needle: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(p) = find(&hay[at..], needle) {
        out.push(at + p);
        at += p + 1;
    }
    out
}

/// What was done to a mutant, for reports and regression tests.
pub type Trail = Vec<String>;

/// Mutate `bytes` into one hostile variant, 1 to 3 steps deep.
pub fn mutate(bytes: &[u8], seed: u64) -> (Vec<u8>, Trail) {
    let mut rng = Rng::new(seed);
    let mut out = bytes.to_vec();
    let mut trail = Vec::new();
    let steps = 1 + rng.below(3);
    for _ in 0..steps {
        let step = if unzip(&out).is_some() {
            // Containers get mostly structural and XML damage: raw bytes damage mostly ends at
            // the CRC check, which one step in five still exercises.
            match rng.below(10) {
                0 => byte_step(&mut rng, &mut out),
                1..=3 => zip_step(&mut rng, &mut out),
                _ => xml_step(&mut rng, &mut out),
            }
        } else {
            byte_step(&mut rng, &mut out)
        };
        trail.push(step);
    }
    (out, trail)
}

/// Damage to raw bytes: bit flips, truncation, a run overwritten, a chunk repeated.
fn byte_step(rng: &mut Rng, out: &mut Vec<u8>) -> String {
    if out.is_empty() {
        out.extend_from_slice(b"PK\x03\x04");
        return "empty: zip magic".into();
    }
    match rng.below(5) {
        0 | 1 => {
            let n = 1 + rng.below(8);
            for _ in 0..n {
                let at = rng.below(out.len());
                out[at] ^= 1 << rng.below(8);
            }
            format!("flip {n} bits")
        }
        2 => {
            let at = rng.below(out.len());
            out.truncate(at);
            format!("truncate at {at}")
        }
        3 => {
            let at = rng.below(out.len());
            let n = (1 + rng.below(64)).min(out.len() - at);
            let fill = rng.pick(&[0x00u8, 0xFF, 0x7F, 0x80]);
            out[at..at + n].iter_mut().for_each(|b| *b = fill);
            format!("overwrite {n} bytes at {at} with {fill:#x}")
        }
        _ => {
            let at = rng.below(out.len());
            let n = (1 + rng.below(4096)).min(out.len() - at);
            let chunk = out[at..at + n].to_vec();
            let to = rng.below(out.len());
            out.splice(to..to, chunk);
            format!("repeat {n} bytes from {at} at {to}")
        }
    }
}

/// Damage to the container: an entry dropped, duplicated, swapped, renamed or emptied.
fn zip_step(rng: &mut Rng, out: &mut Vec<u8>) -> String {
    let Some(mut entries) = unzip(out) else {
        return "not a zip".into();
    };
    if entries.is_empty() {
        return "empty zip".into();
    }
    let i = rng.below(entries.len());
    let j = rng.below(entries.len());
    let name = entries[i].name.clone();
    let what = match rng.below(6) {
        0 => {
            entries.remove(i);
            format!("drop entry {name}")
        }
        1 => {
            let mut copy = entries[i].clone();
            if rng.chance(2) {
                copy.data = entries[j].data.clone();
            }
            entries.insert(j, copy);
            format!("duplicate entry {name} at {j}")
        }
        2 => {
            entries.swap(i, j);
            format!("swap entries {i} and {j}")
        }
        3 => {
            let (a, b) = (entries[i].data.clone(), entries[j].data.clone());
            entries[i].data = b;
            entries[j].data = a;
            format!("swap contents of {name} and {}", entries[j].name)
        }
        4 => {
            entries[i].name = format!("{name}.bak");
            format!("rename entry {name}")
        }
        _ => {
            entries[i].data.clear();
            format!("empty entry {name}")
        }
    };
    *out = rezip(&entries);
    what
}

/// Whether an entry is XML worth mutating: worksheets, shared strings, styles, workbook and
/// relationships of an .xlsx; content, styles and manifest of an .ods.
fn is_target(name: &str) -> bool {
    name.ends_with(".xml") || name.ends_with(".rels")
}

/// Damage to the XML of one part, then the container written again.
fn xml_step(rng: &mut Rng, out: &mut Vec<u8>) -> String {
    let Some(mut entries) = unzip(out) else {
        return "not a zip".into();
    };
    let targets: Vec<usize> = (0..entries.len())
        .filter(|&i| is_target(&entries[i].name))
        .collect();
    if targets.is_empty() {
        return "no xml part".into();
    }
    // Prefer the parts a reader cannot avoid: sheets, strings, styles, workbook, content.
    let preferred: Vec<usize> = targets
        .iter()
        .copied()
        .filter(|&i| {
            let n = &entries[i].name;
            n.contains("worksheets/")
                || n.contains("sharedStrings")
                || n.contains("styles")
                || n.ends_with("workbook.xml")
                || n == "content.xml"
        })
        .collect();
    let i = if !preferred.is_empty() && !rng.chance(5) {
        rng.pick(&preferred)
    } else {
        rng.pick(&targets)
    };
    let name = entries[i].name.clone();
    let what = xml_mutation(rng, &mut entries[i].data);
    *out = rezip(&entries);
    format!("{name}: {what}")
}

/// Attributes made absurd, with the values tried.
const ATTRIBUTES: &[(&str, &[&str])] = &[
    (" r=\"", &["XFD1048576", "A0", "ZZZZZ9", "", "A99999999999"]),
    (" s=\"", &["99999", "-1", "4294967296"]),
    (" t=\"", &["s", "str", "inlineStr", "e", "", "d", "zz"]),
    (" count=\"", &["0", "4294967295", "-5"]),
    (" numFmtId=\"", &["14", "22", "99999", "-3"]),
    (" sheetId=\"", &["0", "1", "99999999999"]),
    (" r:id=\"", &["rId1", "rId999", ""]),
];

/// One XML mutation, in place.
pub fn xml_mutation(rng: &mut Rng, xml: &mut Vec<u8>) -> String {
    match rng.below(12) {
        0 => match element_span(rng, xml) {
            Some((a, b)) => {
                xml.drain(a..b);
                format!("delete element at {a}")
            }
            None => "no element".into(),
        },
        1 => match element_span(rng, xml) {
            Some((a, b)) => {
                let copy = xml[a..b].to_vec();
                let times = if rng.chance(4) { 1000 } else { 1 };
                for _ in 0..times {
                    xml.splice(b..b, copy.iter().copied());
                }
                format!("duplicate element at {a} ×{times}")
            }
            None => "no element".into(),
        },
        2 => {
            // Break a tag: lose a '>', a '<', a quote, or cut the part short.
            let needle: &[u8] = rng.pick(&[&b">"[..], b"<", b"\"", b"</"]);
            let hits = find_all(xml, needle);
            if hits.is_empty() || rng.chance(4) {
                let at = rng.below(xml.len().max(1));
                xml.truncate(at);
                format!("cut xml at {at}")
            } else {
                let at = rng.pick(&hits);
                xml.drain(at..at + needle.len());
                format!("break tag at {at}")
            }
        }
        3 => {
            let dim = br#"<dimension ref="A1:XFD1048576"/>"#;
            if let Some(a) = find(xml, b"<dimension ") {
                let b = a + find(&xml[a..], b">").map_or(0, |p| p + 1);
                xml.splice(a..b, dim.iter().copied());
            } else if let Some(p) = find(xml, b"<sheetData") {
                xml.splice(p..p, dim.iter().copied());
            } else if let Some(p) = find(xml, b"<table:table ") {
                // .ods: a row repeated past Excel's grid.
                let row = br#"<table:table-row table:number-rows-repeated="1048576"><table:table-cell table:number-columns-repeated="16384" office:value-type="float" office:value="1"/></table:table-row>"#;
                let q = p + find(&xml[p..], b">").map_or(0, |x| x + 1);
                xml.splice(q..q, row.iter().copied());
            }
            "huge dimension".into()
        }
        4 => {
            let depth = rng.pick(&[1_000usize, 10_000, 100_000]);
            let tag: &[u8] = rng.pick(&[&b"c"[..], b"row", b"si", b"r", b"x", b"table:table-row"]);
            let mut nest = Vec::with_capacity(depth * (tag.len() * 2 + 5));
            for _ in 0..depth {
                nest.push(b'<');
                nest.extend_from_slice(tag);
                nest.push(b'>');
            }
            if rng.chance(2) {
                for _ in 0..depth {
                    nest.extend_from_slice(b"</");
                    nest.extend_from_slice(tag);
                    nest.push(b'>');
                }
            }
            let at = inner_point(rng, xml);
            xml.splice(at..at, nest);
            format!("nest {depth} <{}> at {at}", String::from_utf8_lossy(tag))
        }
        5 => {
            let bad: &[u8] = rng.pick(&[
                &[0xFFu8, 0xFE][..],
                &[0xC3, 0x28],
                &[0xED, 0xA0, 0x80],
                &[0x80],
                &[0xF4, 0x90, 0x80, 0x80],
            ]);
            let at = text_point(rng, xml);
            xml.splice(at..at, bad.iter().copied());
            format!("invalid utf-8 at {at}")
        }
        6 => {
            let n = rng.pick(&[32_767usize, 32_768, 100_000]);
            let ch = rng.pick(&["X", "中", "1", "&amp;"]);
            let long = ch.repeat(n);
            replace_text(rng, xml, long.as_bytes());
            format!("{n} × {ch:?} in a cell")
        }
        7 => {
            let v = rng.pick(&[
                "1e308",
                "-1e308",
                "1e309",
                "-0",
                "-0.0",
                "NaN",
                "inf",
                "4.9e-324",
                "99999999999999999999",
                "2958466",
                "-1",
                "1e15",
                "0x10",
                "",
            ]);
            replace_value(rng, xml, v.as_bytes());
            format!("number {v:?}")
        }
        8 => {
            // Dates out of range, as serial numbers (.xlsx) or ISO text (.ods).
            let v = rng.pick(&[
                "2958466",
                "-693594",
                "60",
                "0",
                "1e10",
                "99999-01-01",
                "0000-00-00",
                "2020-02-30",
                "-0001-01-01",
                "2020-13-01T25:61:61",
            ]);
            replace_value(rng, xml, v.as_bytes());
            if let Some(p) = find(xml, b"<workbookPr") {
                xml.splice(p + 11..p + 11, b" date1904=\"1\"".iter().copied());
            }
            format!("date {v:?}")
        }
        9 => {
            // An attribute made absurd: a cell reference, a style index, a count.
            let (attr, vals) = rng.pick(ATTRIBUTES);
            let v = rng.pick(vals);
            let (attr, v) = (attr.as_bytes(), v.as_bytes());
            let hits = find_all(xml, attr);
            if hits.is_empty() {
                return "no attribute".into();
            }
            let a = rng.pick(&hits) + attr.len();
            let b = a + find(&xml[a..], b"\"").unwrap_or(0);
            xml.splice(a..b, v.iter().copied());
            format!(
                "attribute {} = {}",
                String::from_utf8_lossy(attr).trim(),
                String::from_utf8_lossy(v)
            )
        }
        10 => {
            let junk: &[u8] = rng.pick(&[
                &b"<!DOCTYPE x [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">]>"[..],
                b"&c;&undefined;&#0;&#xFFFFFFFF;",
                b"<![CDATA[<c r=\"A1\">",
                b"<?xml version=\"1.0\"?>",
                b"\x00\x00\x00",
            ]);
            let at = if junk.starts_with(b"<!DOCTYPE") {
                find(xml, b"?>").map_or(0, |p| p + 2)
            } else {
                text_point(rng, xml)
            };
            xml.splice(at..at, junk.iter().copied());
            format!("junk at {at}")
        }
        _ => {
            // Two elements of the part swapped.
            match (element_span(rng, xml), element_span(rng, xml)) {
                (Some((a, b)), Some((c, d))) if b <= c => {
                    let first = xml[a..b].to_vec();
                    let second = xml[c..d].to_vec();
                    xml.splice(c..d, first);
                    xml.splice(a..b, second);
                    "swap elements".into()
                }
                _ => "no two elements".into(),
            }
        }
    }
}

/// A random element's byte span: a start tag to its matching end (or a self-closing tag).
fn element_span(rng: &mut Rng, xml: &[u8]) -> Option<(usize, usize)> {
    let starts: Vec<usize> = find_all(xml, b"<")
        .into_iter()
        .filter(|&p| xml.get(p + 1).is_some_and(|c| c.is_ascii_alphabetic()))
        .collect();
    if starts.is_empty() {
        return None;
    }
    let a = rng.pick(&starts);
    let name_end = a
        + 1
        + xml[a + 1..]
            .iter()
            .position(|c| c.is_ascii_whitespace() || *c == b'>' || *c == b'/')?;
    let name = &xml[a + 1..name_end];
    let tag_end = a + find(&xml[a..], b">")? + 1;
    if xml[tag_end - 2] == b'/' {
        return Some((a, tag_end));
    }
    let mut close = b"</".to_vec();
    close.extend_from_slice(name);
    close.push(b'>');
    let b = tag_end + find(&xml[tag_end..], &close)? + close.len();
    Some((a, b))
}

/// A point just after some start tag (inside an element), or the middle.
fn inner_point(rng: &mut Rng, xml: &[u8]) -> usize {
    let hits: Vec<usize> = [
        "<sheetData>",
        "<row ",
        "<si>",
        "<sst ",
        "<table:table-row",
        "<cellXfs",
        "<sheets>",
    ]
    .iter()
    .flat_map(|n| find_all(xml, n.as_bytes()))
    .filter_map(|p| find(&xml[p..], b">").map(|q| p + q + 1))
    .collect();
    if hits.is_empty() {
        xml.len() / 2
    } else {
        rng.pick(&hits)
    }
}

/// A point inside a text node (after `<t>`, `<v>`, `<text:p>`), or anywhere.
fn text_point(rng: &mut Rng, xml: &[u8]) -> usize {
    let hits: Vec<usize> = ["<t>", "<t ", "<v>", "<text:p>", "<f>"]
        .iter()
        .flat_map(|n| find_all(xml, n.as_bytes()))
        .filter_map(|p| find(&xml[p..], b">").map(|q| p + q + 1))
        .collect();
    if hits.is_empty() {
        rng.below(xml.len() + 1)
    } else {
        rng.pick(&hits)
    }
}

/// Replace the content of a text node (`<t>`, `<text:p>`) with `text`; or add an inline
/// string cell when the part has none.
fn replace_text(rng: &mut Rng, xml: &mut Vec<u8>, text: &[u8]) {
    let mut hits: Vec<(usize, &[u8])> = Vec::new();
    for (open, close) in [
        (&b"<t>"[..], &b"</t>"[..]),
        (b"<t xml:space=\"preserve\">", b"</t>"),
        (b"<text:p>", b"</text:p>"),
    ] {
        hits.extend(
            find_all(xml, open)
                .into_iter()
                .map(|p| (p + open.len(), close)),
        );
    }
    if hits.is_empty() {
        let cell = [
            &b"<c r=\"B2\" t=\"inlineStr\"><is><t>"[..],
            text,
            b"</t></is></c>",
        ]
        .concat();
        let at = inner_point(rng, xml);
        xml.splice(at..at, cell);
        return;
    }
    let (a, close) = rng.pick(&hits);
    let b = a + find(&xml[a..], close).unwrap_or(0);
    xml.splice(a..b, text.iter().copied());
}

/// Replace a value: a `<v>` of an .xlsx cell, or an `office:value` / `office:date-value` of
/// an .ods cell.
fn replace_value(rng: &mut Rng, xml: &mut Vec<u8>, value: &[u8]) {
    let mut hits: Vec<(usize, &[u8])> = Vec::new();
    for (open, close) in [
        (&b"<v>"[..], &b"</v>"[..]),
        (b"office:value=\"", b"\""),
        (b"office:date-value=\"", b"\""),
    ] {
        hits.extend(
            find_all(xml, open)
                .into_iter()
                .map(|p| (p + open.len(), close)),
        );
    }
    if hits.is_empty() {
        return;
    }
    let (a, close) = rng.pick(&hits);
    let b = a + find(&xml[a..], close).unwrap_or(0);
    xml.splice(a..b, value.iter().copied());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_mutant() {
        let entries = vec![
            Entry { name: "xl/worksheets/sheet1.xml".into(), data: b"<worksheet><sheetData><row r=\"1\"><c r=\"A1\"><v>1</v></c></row></sheetData></worksheet>".to_vec() },
            Entry { name: "xl/sharedStrings.xml".into(), data: b"<sst><si><t>a</t></si></sst>".to_vec() },
        ];
        let zip = rezip(&entries);
        for seed in 0..50 {
            assert_eq!(mutate(&zip, seed), mutate(&zip, seed));
        }
    }

    #[test]
    fn duplicate_names_survive_rezip() {
        let e = Entry {
            name: "xl/workbook.xml".into(),
            data: b"<workbook/>".to_vec(),
        };
        let zip = rezip(&[e.clone(), e]);
        // Two local and two central headers name it; readers keep one of the two.
        assert_eq!(find_all(&zip, b"xl/workbook.xml").len(), 4);
        assert!(unzip(&zip).is_some());
    }
}
