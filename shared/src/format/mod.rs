//! Output formats every listing and inspect tool shares: Docker's
//! `--format` (Go templates, `json`, `table …`), aligned tables, and
//! Docker's human wording for sizes and ages.

pub mod human;
pub mod table;
pub mod template;

pub use table::Table;
pub use template::{Template, TemplateError};

/// `docker inspect`'s output, for every `*-inspect` tool: one rendered
/// `template` line per object, or all of them as one pretty JSON array.
pub fn print_inspected(
    objects: &[serde_json::Value],
    template: Option<&Template>,
) -> Result<(), TemplateError> {
    match template {
        Some(template) => {
            for object in objects {
                crate::output::result(template.render(object)?);
            }
        }
        None => crate::output::result(
            serde_json::to_string_pretty(objects).expect("JSON values serialise"),
        ),
    }
    Ok(())
}

/// What a `--format` value asks for.
pub enum Format {
    /// The tool's default table.
    Default,
    /// One compact JSON object per line.
    Json,
    /// `table TEMPLATE`: a header row, then one row per item, aligned.
    Table(Template),
    /// A bare template, rendered once per item.
    Template(Template),
}

impl Format {
    /// Parses a `--format` value as Docker does: `json`, `table`,
    /// `table TEMPLATE`, or a template.
    pub fn parse(value: Option<&str>) -> Result<Format, TemplateError> {
        let Some(value) = value else {
            return Ok(Format::Default);
        };
        // Docker lets `\t` and `\n` typed in a shell stand for tab and newline.
        let value = &value.replace("\\t", "\t").replace("\\n", "\n");
        match value.trim() {
            "" | "table" => Ok(Format::Default),
            "json" => Ok(Format::Json),
            _ => match value.strip_prefix("table ") {
                Some(rest) => Ok(Format::Table(Template::parse(rest)?)),
                None => Ok(Format::Template(Template::parse(value)?)),
            },
        }
    }

    /// The rows as asked, or `None` for the tool's own default table.
    /// `headers` label each field for a `table` template's header row.
    pub fn render(
        &self,
        rows: &[serde_json::Value],
        headers: &[(&str, &str)],
    ) -> Result<Option<String>, TemplateError> {
        let mut out = String::new();
        match self {
            Format::Default => return Ok(None),
            Format::Json => {
                for row in rows {
                    out.push_str(&format!("{row}\n"));
                }
            }
            Format::Template(template) => {
                for row in rows {
                    out.push_str(&template.render(row)?);
                    out.push('\n');
                }
            }
            Format::Table(template) => {
                let mut table = Table::new();
                let labels: serde_json::Map<String, serde_json::Value> = headers
                    .iter()
                    .map(|(field, label)| (field.to_string(), serde_json::Value::from(*label)))
                    .collect();
                table.raw_row(&template.render(&serde_json::Value::Object(labels))?);
                for row in rows {
                    table.raw_row(&template.render(row)?);
                }
                out = table.render();
            }
        }
        Ok(Some(out))
    }
}
