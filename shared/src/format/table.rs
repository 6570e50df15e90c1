//! Aligned text tables, as Docker prints them: columns separated by at
//! least three spaces, through the `tabwriter` crate.

use std::io::Write;

pub struct Table {
    writer: tabwriter::TabWriter<Vec<u8>>,
}

impl Default for Table {
    fn default() -> Self {
        Table::new()
    }
}

impl Table {
    /// Docker's tables: columns at least 10 wide, padding included (the
    /// CLI's `tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`).
    pub fn new() -> Table {
        Table::with_min_width(10)
    }

    /// A table whose columns are at least `width` wide, their padding
    /// included, as Go's tabwriter counts it (`docker top`'s 20).
    pub fn with_min_width(width: usize) -> Table {
        Table {
            writer: tabwriter::TabWriter::new(Vec::new())
                .padding(3)
                .minwidth(width.saturating_sub(3)),
        }
    }

    /// Adds one row; cells must not contain tabs or newlines.
    pub fn row<S: AsRef<str>>(&mut self, cells: &[S]) {
        let line: Vec<&str> = cells.iter().map(AsRef::as_ref).collect();
        let _ = writeln!(self.writer, "{}", line.join("\t"));
    }

    /// Adds a row that is already tab-separated (a rendered `table` template).
    pub fn raw_row(&mut self, line: &str) {
        let _ = writeln!(self.writer, "{line}");
    }

    /// The aligned text, each line without trailing spaces.
    pub fn render(self) -> String {
        let bytes = self.writer.into_inner().unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        text.lines()
            .map(|l| format!("{}\n", l.trim_end()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_with_three_spaces() {
        let mut table = Table::new();
        table.row(&["REPOSITORY", "TAG", "SIZE"]);
        table.row(&["busybox", "latest", "1.98MB"]);
        assert_eq!(
            table.render(),
            "REPOSITORY   TAG       SIZE\nbusybox      latest    1.98MB\n"
        );
    }

    #[test]
    fn a_minimum_width_pads_narrow_columns() {
        let mut table = Table::with_min_width(9);
        table.row(&["PID", "CMD"]);
        table.row(&["4242", "sleep 1000"]);
        assert_eq!(table.render(), "PID      CMD\n4242     sleep 1000\n");
    }
}
