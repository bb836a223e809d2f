//! A check for Kubernetes resource quantities ("500m", "128Mi", "1e3"), so a
//! bad annotation is reported by the injector instead of failing pod
//! creation later with a less specific message.

const SUFFIXES: [&str; 14] = [
    "", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
];

/// Returns true when `text` is a valid non-negative quantity, following the
/// grammar of `resource.Quantity` in Kubernetes 1.33: a decimal number, then
/// a binary suffix, a decimal suffix or a decimal exponent.
pub fn is_valid(text: &str) -> bool {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    is_number(number) && (SUFFIXES.contains(&suffix) || is_exponent(suffix))
}

/// Converts a valid quantity to a number in base units ("500m" is 0.5), for
/// comparing a request with a limit. Returns `None` for an invalid quantity.
pub fn to_f64(text: &str) -> Option<f64> {
    if !is_valid(text) {
        return None;
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    Some(number * multiplier(suffix)?)
}

fn multiplier(suffix: &str) -> Option<f64> {
    let decimal = |power: i32| 1000f64.powi(power);
    let binary = |power: i32| 1024f64.powi(power);
    let value = match suffix {
        "" => 1.0,
        "m" => decimal(-1),
        "k" => decimal(1),
        "M" => decimal(2),
        "G" => decimal(3),
        "T" => decimal(4),
        "P" => decimal(5),
        "E" => decimal(6),
        "Ki" => binary(1),
        "Mi" => binary(2),
        "Gi" => binary(3),
        "Ti" => binary(4),
        "Pi" => binary(5),
        "Ei" => binary(6),
        exponent => 10f64.powi(exponent[1..].parse().ok()?),
    };
    Some(value)
}

fn is_number(text: &str) -> bool {
    let digits = text.strip_prefix('+').unwrap_or(text);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |part: &str| part.chars().all(|c| c.is_ascii_digit());

    !(whole.is_empty() && fraction.is_empty()) && all_digits(whole) && all_digits(fraction)
}

fn is_exponent(suffix: &str) -> bool {
    let Some(rest) = suffix.strip_prefix(['e', 'E']) else {
        return false;
    };
    let digits = rest.strip_prefix(['+', '-']).unwrap_or(rest);
    !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::{is_valid, to_f64};

    #[test]
    fn quantities_convert_to_base_units() {
        assert_eq!(to_f64("500m"), Some(0.5));
        assert_eq!(to_f64("2"), Some(2.0));
        assert_eq!(to_f64("128Mi"), Some(128.0 * 1024.0 * 1024.0));
        assert_eq!(to_f64("1e3"), Some(1000.0));
        assert_eq!(to_f64("1E-2"), Some(0.01));
        assert_eq!(to_f64("12mb"), None);
    }

    #[test]
    fn valid_quantities_accepted() {
        for text in [
            "1", "500m", "0.5", "128Mi", "1Gi", "2k", "1e3", "1E-2", ".5", "+1",
        ] {
            assert!(is_valid(text), "{text}");
        }
    }

    #[test]
    fn invalid_quantities_rejected() {
        for text in [
            "", "m", "-1", "1.2.3", "12mb", "1 Gi", "Mi128", "1e", "abc", "1ki",
        ] {
            assert!(!is_valid(text), "{text}");
        }
    }
}
