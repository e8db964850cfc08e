//! RFC 3339 timestamps (UTC, milliseconds) for result metadata, without a date library.

use std::time::{SystemTime, UNIX_EPOCH};

/// `2026-11-26T07:33:20.123Z`. Times before 1970 print as the epoch. Runs for every
/// completed step, so digits are written directly instead of through `format!`.
pub fn rfc3339_millis(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400) as u32;
    let (year, month, day) = civil_from_days(days);
    let mut out = *b"0000-00-00T00:00:00.000Z";
    put_digits(&mut out[0..4], year.clamp(0, 9999) as u32);
    put_digits(&mut out[5..7], month);
    put_digits(&mut out[8..10], day);
    put_digits(&mut out[11..13], of_day / 3600);
    put_digits(&mut out[14..16], (of_day % 3600) / 60);
    put_digits(&mut out[17..19], of_day % 60);
    put_digits(&mut out[20..23], since.subsec_millis());
    ascii(&out)
}

/// Writes `value` as zero-padded decimal digits filling `slot`.
fn put_digits(slot: &mut [u8], mut value: u32) {
    for byte in slot.iter_mut().rev() {
        *byte = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// Lowercase hex of `value`, zero-padded to `width` digits (at most 32).
pub fn hex(value: u128, width: usize) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let width = width.min(32);
    let mut out = [b'0'; 32];
    let mut rest = value;
    for byte in out[..width].iter_mut().rev() {
        *byte = DIGITS[(rest & 0xf) as usize];
        rest >>= 4;
    }
    ascii(&out[..width])
}

/// A String of bytes this module wrote, all ASCII.
fn ascii(bytes: &[u8]) -> String {
    std::str::from_utf8(bytes).map(str::to_owned).unwrap_or_default()
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian calendar.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339_millis(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // 2000-02-29T12:34:56.789Z, a leap day.
        let t = UNIX_EPOCH + Duration::from_millis(951_827_696_789);
        assert_eq!(rfc3339_millis(t), "2000-02-29T12:34:56.789Z");
        // 2026-11-26T00:00:00Z
        let t = UNIX_EPOCH + Duration::from_secs(1_795_651_200);
        assert_eq!(rfc3339_millis(t), "2026-11-26T00:00:00.000Z");
        // A year with digits in every place, and milliseconds below 100.
        let t = UNIX_EPOCH + Duration::from_millis(4_102_444_799_007);
        assert_eq!(rfc3339_millis(t), "2099-12-31T23:59:59.007Z");
    }

    #[test]
    fn hex_pads_to_width() {
        assert_eq!(hex(0xab, 4), "00ab");
        assert_eq!(hex(u128::MAX, 32), "ffffffffffffffffffffffffffffffff");
        assert_eq!(hex(0x1234_5678_9abc_def0, 16), "123456789abcdef0");
    }
}
