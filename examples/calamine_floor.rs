//! The floor for `scripts/bench.sh` (issue 11): calamine's bare streaming read of a return's
//! roster sheet (every cell, nothing converted, nothing checked) in this process. Prints the
//! rows read and the time; not a test.
//!
//! ```text
//! calamine_floor FILE [SHEET]      (SHEET defaults to 培训台账)
//! ```

use calamine::Xlsx;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: calamine_floor FILE [SHEET]");
        std::process::exit(2);
    };
    let sheet = args.get(1).map_or("培训台账", String::as_str);
    let started = Instant::now();
    let mut book: Xlsx<_> = calamine::open_workbook(path).expect("an .xlsx file");
    let mut reader = book.worksheet_cells_reader(sheet).expect("the sheet");
    let (mut cells, mut last_row) = (0u64, 0u32);
    while let Some(cell) = reader.next_cell().expect("cells") {
        cells += 1;
        last_row = last_row.max(cell.get_position().0);
    }
    let secs = started.elapsed().as_secs_f64();
    // The header row is not a data row.
    let rows = u64::from(last_row);
    println!(
        "rows={rows} cells={cells} seconds={secs:.4} rows_per_s={:.0}",
        rows as f64 / secs
    );
}
