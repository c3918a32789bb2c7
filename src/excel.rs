//! What every workbook tally writes shares (master, feedback, template): Excel's limits and
//! the house look.
