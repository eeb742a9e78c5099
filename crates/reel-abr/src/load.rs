//! Parsing of trace files and chunk-size files from their text contents (the caller reads files).

use crate::trace::{Trace, TraceError};

/// Why a trace or chunk-size text could not be parsed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LoadError {
    /// A trace line does not have exactly two columns.
    #[error("line {line_no}: expected 2 columns (seconds, Mbit/s), found {n_columns}")]
    WrongColumnCount {
        /// 1-based line number.
        line_no: usize,
        /// Number of whitespace-separated columns found.
        n_columns: usize,
    },
    /// A field is not a number.
    #[error("line {line_no}: {field:?} is not a number")]
    NotANumber {
        /// 1-based line number.
        line_no: usize,
        /// The field text.
        field: String,
    },
    /// The parsed samples do not form a valid trace.
    #[error("invalid trace: {0}")]
    InvalidTrace(#[from] TraceError),
    /// A chunk-size file has no sizes.
    #[error("chunk-size file has no sizes")]
    NoSizes,
}

/// Parses a trace: one `seconds Mbit/s` pair per line; blank lines are skipped.
pub fn parse_trace(text: &str) -> Result<Trace, LoadError> {
    let mut times = Vec::new();
    let mut mbps = Vec::new();
    for (line_idx, line) in text.lines().enumerate() {
        let line_no = line_idx + 1;
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        if fields.len() != 2 {
            return Err(LoadError::WrongColumnCount {
                line_no,
                n_columns: fields.len(),
            });
        }
        times.push(parse_f64(fields[0], line_no)?);
        mbps.push(parse_f64(fields[1], line_no)?);
    }
    Ok(Trace::new(times, mbps)?)
}

/// Parses a chunk-size file: one size in bytes per line; blank lines are skipped.
pub fn parse_chunk_sizes(text: &str) -> Result<Vec<u64>, LoadError> {
    let mut sizes = Vec::new();
    for (line_idx, line) in text.lines().enumerate() {
        let field = line.trim();
        if field.is_empty() {
            continue;
        }
        let size = field.parse::<u64>().map_err(|_| LoadError::NotANumber {
            line_no: line_idx + 1,
            field: field.to_string(),
        })?;
        sizes.push(size);
    }
    if sizes.is_empty() {
        return Err(LoadError::NoSizes);
    }
    Ok(sizes)
}

fn parse_f64(field: &str, line_no: usize) -> Result<f64, LoadError> {
    field.parse::<f64>().map_err(|_| LoadError::NotANumber {
        line_no,
        field: field.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_trace_err(text: &str, expected: LoadError) {
        assert_eq!(parse_trace(text), Err(expected));
    }

    #[test]
    fn parses_trace_with_tabs_spaces_and_blank_lines() {
        let trace = parse_trace("0.0\t0.8\n5.0 1.5\n\n10.0   2\n").expect("valid trace");
        assert_eq!(trace.times(), &[0.0, 5.0, 10.0]);
        assert_eq!(trace.mbps(), &[0.8, 1.5, 2.0]);
    }

    #[test]
    fn reports_trace_errors() {
        check_trace_err(
            "0 1\n1 2 3\n",
            LoadError::WrongColumnCount {
                line_no: 2,
                n_columns: 3,
            },
        );
        check_trace_err(
            "0 1\n1\n",
            LoadError::WrongColumnCount {
                line_no: 2,
                n_columns: 1,
            },
        );
        check_trace_err(
            "0 1\nx 2\n",
            LoadError::NotANumber {
                line_no: 2,
                field: "x".to_string(),
            },
        );
        check_trace_err(
            "0 1\n",
            LoadError::InvalidTrace(TraceError::TooShort { n_samples: 1 }),
        );
        check_trace_err(
            "",
            LoadError::InvalidTrace(TraceError::TooShort { n_samples: 0 }),
        );
        check_trace_err(
            "5 1\n4 1\n",
            LoadError::InvalidTrace(TraceError::BadTimestamp {
                sample_idx: 1,
                time: 4.0,
            }),
        );
        // NaN never compares equal, so match on the variant instead of using `check_trace_err`.
        let nan_result = parse_trace("0 1\n1 NaN\n");
        assert!(matches!(
            nan_result,
            Err(LoadError::InvalidTrace(TraceError::BadThroughput {
                sample_idx: 1,
                ..
            }))
        ));
    }

    #[test]
    fn parses_chunk_sizes() {
        assert_eq!(
            parse_chunk_sizes("181801\n155580\n"),
            Ok(vec![181801, 155580])
        );
        assert_eq!(parse_chunk_sizes("\n"), Err(LoadError::NoSizes));
        assert_eq!(
            parse_chunk_sizes("12\n-3\n"),
            Err(LoadError::NotANumber {
                line_no: 2,
                field: "-3".to_string()
            })
        );
    }
}
