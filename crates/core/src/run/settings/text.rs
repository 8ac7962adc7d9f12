//! How the settings' values are read from text and written back: whole and decimal numbers,
//! switches and subset sizes, each refusal in one line that quotes what was typed. Shared by
//! every setting of the table and the page's other fields (the UMAP parameters).

use std::str::FromStr;

/// A whole number as typed.
pub fn whole<T: FromStr>(raw: &str) -> Result<T, String> {
    let raw = raw.trim();
    raw.parse()
        .map_err(|_| format!("'{raw}' is not a whole number"))
}

/// A decimal number as typed.
pub fn number<T: FromStr>(raw: &str) -> Result<T, String> {
    let raw = raw.trim();
    raw.parse().map_err(|_| format!("'{raw}' is not a number"))
}

/// A switch's two values in the form and the URL.
pub fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

/// A switch as written: `on`/`off`, or `true`/`false`, `yes`/`no`, `1`/`0`, in any case.
pub fn switch(raw: &str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => Err(format!("'{}' is not on or off", raw.trim())),
    }
}

/// A subset's size as written: a whole number, or empty (or `all`) for everything.
pub fn limit(raw: &str) -> Result<Option<usize>, String> {
    let raw = raw.trim();
    if raw.is_empty() || raw.eq_ignore_ascii_case("all") {
        return Ok(None);
    }
    raw.parse::<usize>()
        .map(Some)
        .map_err(|_| format!("'{raw}' is not a whole number (leave empty for all)"))
}
