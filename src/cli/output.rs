//! Printing for the commands. `println!` panics when the reader has closed
//! the pipe, as `triage eval ... | head -1` does, so the commands print
//! through these macros instead, which end the process quietly then.

use std::io::{ErrorKind, Write};

/// Writes formatted text and a newline to standard output.
macro_rules! outln {
    () => {
        $crate::cli::output::write_line(false, format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::cli::output::write_line(false, format_args!($($arg)*))
    };
}

/// Writes formatted text and a newline to standard error.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::cli::output::write_line(true, format_args!($($arg)*))
    };
}

pub(crate) use {errln, outln};

/// Writes one line to standard output, or standard error when `to_stderr`
/// is set. A closed pipe exits the process with status 0, because the
/// reader has stopped reading on purpose. Any other write error exits with
/// status 1.
pub fn write_line(to_stderr: bool, text: std::fmt::Arguments<'_>) {
    let result = if to_stderr {
        let mut stderr = std::io::stderr().lock();
        writeln!(stderr, "{text}").and_then(|()| stderr.flush())
    } else {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{text}").and_then(|()| stdout.flush())
    };
    match result {
        Ok(()) => {}
        Err(err) if err.kind() == ErrorKind::BrokenPipe => std::process::exit(0),
        Err(err) => {
            let stream = if to_stderr {
                "standard error"
            } else {
                "standard output"
            };
            // Standard error may be the stream that failed, so this line
            // is best effort.
            let _ = writeln!(
                std::io::stderr(),
                "error: failed to write to {stream}: {err}"
            );
            std::process::exit(1);
        }
    }
}
