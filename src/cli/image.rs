//! `thoth-rs image inspect`.

use std::path::Path;

use super::settings::resolve_path;
use super::{CliError, Printer};
use crate::image::{self, ImageError};
use crate::input::InputError;

/// An unreadable image is bad input (exit 2), named with the file at fault.
pub fn image_error(e: ImageError) -> CliError {
    InputError::file(Path::new(&e.path), e.message).into()
}

/// Analyse the image at `path`; print it, and save it with `save`.
pub fn inspect(
    dir: &Path,
    path: &Path,
    json: bool,
    save: Option<&str>,
    printer: &Printer,
) -> Result<(), CliError> {
    let path = resolve_path(dir, path);
    let mut analysis = image::inspect(&path).map_err(image_error)?;
    if let Some(name) = save {
        let file = image::save(name, &analysis).map_err(image_error)?;
        analysis.reference = Some(name.to_string());
        printer.info(format!("saved as {name} ({})", file.display()));
    }
    if let Some(note) = &analysis.rpm.note {
        printer.warn(format!("rpm: {note}"));
    }
    if json {
        let text = serde_json::to_string_pretty(&analysis)
            .map_err(|e| CliError::Failure(e.to_string()))?;
        printer.stdout(&text)
    } else {
        printer.stdout(&analysis.summary())
    }
}
