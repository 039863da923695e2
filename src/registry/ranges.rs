//! The byte-range headers of the blob routes, parsed without I/O: `Range` on blob reads and
//! `Content-Range` on chunked uploads. Both come straight from clients, so anything that is not
//! a well-formed range is `None` and the caller answers with the OCI error for it.

/// Parses `Range: bytes=a-b` (also `a-` and `-n`) against a blob of `size` bytes into the first
/// and last byte to send, both within the blob.
pub fn byte_range(header: &str, size: u64) -> Option<(u64, u64)> {
    let spec = header.trim().strip_prefix("bytes=")?;
    let (start, end) = spec.split_once('-')?;
    let (start, end) = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().ok()?;
            (size.checked_sub(n.min(size))?, size.checked_sub(1)?)
        }
        (start, "") => (start.parse().ok()?, size.checked_sub(1)?),
        (start, end) => (
            start.parse().ok()?,
            end.parse::<u64>().ok()?.min(size.checked_sub(1)?),
        ),
    };
    (start <= end && end < size).then_some((start, end))
}

/// The start of a `Content-Range: <start>-<end>` (optionally with a `bytes ` prefix and a
/// `/<size>` suffix), as chunked uploads send it.
pub fn content_range_start(value: &str) -> Option<u64> {
    let value = value.trim();
    let value = value.strip_prefix("bytes ").unwrap_or(value);
    let (start, end) = value.split_once('-')?;
    let end = end.split('/').next()?;
    let (start, end): (u64, u64) = (start.trim().parse().ok()?, end.trim().parse().ok()?);
    (start <= end).then_some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_ranges_follow_http() {
        assert_eq!(byte_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(byte_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(byte_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(byte_range("bytes=50-500", 100), Some((50, 99)));
        assert_eq!(byte_range("bytes=100-", 100), None);
        assert_eq!(byte_range("bytes=9-3", 100), None);
        assert_eq!(byte_range("items=0-1", 100), None);
    }

    #[test]
    fn content_ranges_name_where_a_chunk_starts() {
        assert_eq!(content_range_start("0-99"), Some(0));
        assert_eq!(content_range_start("bytes 100-199/200"), Some(100));
        assert_eq!(content_range_start("5-1"), None);
        assert_eq!(content_range_start("x"), None);
    }
}
