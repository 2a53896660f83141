//! The log: what devices and the machine report through `tracing` (a disk's I/O
//! errors, a virtio device that needs a reset), shown on stderr or written to a file.
//!
//! The filter takes `tracing-subscriber`'s env-filter syntax (`warn`,
//! `info,devices=debug`), from `--log` or else the `TURING_LOG` environment
//! variable; warnings and errors are shown when neither is given. The serial
//! console owns stdout, and the log never writes there.

use std::fmt;
use std::fs::File;
use std::path::Path;
use std::sync::Mutex;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The environment variable read when `--log` is not given.
pub const LOG_ENV: &str = "TURING_LOG";
/// What is shown when neither `--log` nor `TURING_LOG` says otherwise.
pub const DEFAULT_FILTER: &str = "warn";

/// One line per event, `turing: warning: message`, like the CLI's own messages,
/// so a log line reads the same as every other line Turing prints.
struct LineFormat;

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let level = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        write!(writer, "turing: {level}: ")?;
        if *event.metadata().level() >= Level::DEBUG {
            write!(writer, "{}: ", event.metadata().target())?;
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Installs the process's log subscriber: `filter` (else `TURING_LOG`, else
/// [`DEFAULT_FILTER`]), writing to `file` when given, else to stderr.
///
/// Errors (one line each) name a filter that does not parse or a file that
/// cannot be created. Installing twice keeps the first subscriber.
pub fn init(filter: Option<&str>, file: Option<&Path>) -> Result<(), String> {
    let from_env = std::env::var(LOG_ENV).ok().filter(|s| !s.trim().is_empty());
    let (spec, source) = match (filter, &from_env) {
        (Some(spec), _) => (spec.to_owned(), "--log"),
        (None, Some(spec)) => (spec.clone(), LOG_ENV),
        (None, None) => (DEFAULT_FILTER.to_owned(), "the default log filter"),
    };
    let filter = parse_filter(&spec).map_err(|e| format!("invalid {source} '{spec}': {e}"))?;
    let builder = tracing_subscriber::fmt()
        .event_format(LineFormat)
        .with_env_filter(filter);
    let installed = match file {
        Some(path) => {
            let file = File::create(path)
                .map_err(|e| format!("cannot create log file {}: {e}", path.display()))?;
            builder.with_writer(Mutex::new(file)).try_init()
        }
        None => builder.with_writer(std::io::stderr).try_init(),
    };
    // A second call (tests that run the CLI in-process) keeps the first subscriber.
    drop(installed);
    Ok(())
}

/// Parses an env-filter directive list, rejecting what env-filter would only
/// ignore: empty directives are fine, unknown level names are not.
fn parse_filter(spec: &str) -> Result<EnvFilter, String> {
    EnvFilter::builder()
        .with_regex(false)
        .parse(spec)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_or_name_the_problem() {
        assert!(parse_filter("warn").is_ok());
        assert!(parse_filter("info,devices=debug").is_ok());
        assert!(parse_filter("devices::virtio=trace").is_ok());
        let err = parse_filter("devices=loud").unwrap_err();
        assert!(!err.is_empty());
        assert!(
            init(Some("devices=loud"), None)
                .unwrap_err()
                .contains("--log")
        );
    }

    #[test]
    fn a_log_file_that_cannot_be_created_is_one_line() {
        let err = init(Some("warn"), Some(Path::new("/nonexistent-dir/turing.log"))).unwrap_err();
        assert!(err.starts_with("cannot create log file /nonexistent-dir/turing.log"));
        assert!(!err.contains('\n'));
    }
}
