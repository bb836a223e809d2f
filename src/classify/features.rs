//! Feature extraction: hashed word unigrams, word bigrams, character
//! 4-grams and position- and region-tagged edge tokens, plus a few numeric
//! features.
//!
//! Extraction is one pass over the bytes read and calls a closure for each
//! hashed feature, so the caller can accumulate logits without storing the
//! features anywhere.

/// Bytes read from the start of a prompt. Together with [`TAIL_BYTES`] this
/// bounds the work per prompt: a longer prompt is read only at both ends.
pub const HEAD_BYTES: usize = 4096;

/// Bytes read from the end of a prompt that is longer than
/// `HEAD_BYTES + TAIL_BYTES`.
pub const TAIL_BYTES: usize = 1024;

/// Number of numeric features that [`scan`] returns.
pub const DENSE_COUNT: usize = 16;

/// Identifies this feature layout. Weights files store it, and a file built
/// for a different layout is rejected, because its weight rows would mean
/// other features.
pub const FEATURE_SET: u32 = 3;

/// Number of leading and trailing tokens that also get a position-tagged
/// feature.
const EDGE_TOKENS: usize = 3;

/// Number of leading and trailing tokens that also get a feature tagged
/// with their region (instructions tend to sit at either end of a prompt).
const REGION_TOKENS: usize = 12;

const SALT_UNIGRAM: u64 = 0x51_7cc1_b727_220a;
const SALT_BIGRAM: u64 = 0x2f1c_9a3e_55d0_7b13;
const SALT_CHARS: u64 = 0x6a09_e667_f3bc_c909;
const SALT_FIRST: u64 = 0x3c6e_f372_fe94_f82b;
const SALT_LAST: u64 = 0x1f83_d9ab_fb41_bd6b;
const SALT_HEAD_REGION: u64 = 0x5be0_cd19_137e_2179;
const SALT_TAIL_REGION: u64 = 0x9b05_688c_2b3e_6c1f;

const MULTIPLY_CHARS: u64 = 0x9e37_79b9_7f4a_7c15;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Maps a 64-bit value to a well-mixed 32-bit hash (a multiply-xorshift
/// finalizer), so that masking the low bits picks a uniform bucket.
pub fn mix(value: u64) -> u32 {
    let mut x = value ^ (value >> 33);
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    x as u32
}

/// Hashes a character 4-gram (4 normalized bytes) with a single multiply:
/// it is the most frequent feature, and the high half of the product
/// depends on every input bit.
fn char_hash(chars: u32) -> u32 {
    let product = (u64::from(chars) ^ SALT_CHARS).wrapping_mul(MULTIPLY_CHARS);
    (product >> 32) as u32
}

/// Folds one byte into a 64-bit FNV-1a hash.
fn fnv_step(hash: u64, byte: u8) -> u64 {
    (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME)
}

/// Returns the parts of `prompt` that are read: the whole prompt, or its
/// first [`HEAD_BYTES`] and last [`TAIL_BYTES`] bytes.
pub fn read_window(prompt: &[u8]) -> (&[u8], &[u8]) {
    if prompt.len() <= HEAD_BYTES + TAIL_BYTES {
        return (prompt, &[]);
    }
    (&prompt[..HEAD_BYTES], &prompt[prompt.len() - TAIL_BYTES..])
}

/// Byte classes that drive tokenization.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Space,
    Newline,
    Word,
    Punct,
}

const fn class_of(byte: u8) -> Class {
    match byte {
        b'\n' => Class::Newline,
        b if b.is_ascii_whitespace() => Class::Space,
        b if b.is_ascii_alphanumeric() || b >= 0x80 => Class::Word,
        _ => Class::Punct,
    }
}

/// Lowercases ASCII letters, maps every digit to `0` so that numbers of the
/// same shape share features, and maps whitespace other than a newline to
/// a space.
const fn normalize(byte: u8) -> u8 {
    match class_of(byte) {
        Class::Space => b' ',
        _ if byte.is_ascii_digit() => b'0',
        _ => byte.to_ascii_lowercase(),
    }
}

/// The class and normalized form of every byte, looked up once per byte.
static BYTES: [(Class, u8); 256] = {
    let mut table = [(Class::Space, 0u8); 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = (class_of(byte as u8), normalize(byte as u8));
        byte += 1;
    }
    table
};

/// Counts of the bytes read, per byte value, plus word statistics. They
/// become numeric features at the end. A histogram costs one increment per
/// byte, however many byte classes the features use.
struct Counts {
    histogram: [u16; 256],
    words: u32,
    word_bytes: u32,
    /// Words that end with a digit.
    numbers: u32,
    /// Length of the longest word that ends with a digit.
    max_number: u32,
}

impl Counts {
    fn new() -> Counts {
        Counts {
            histogram: [0; 256],
            words: 0,
            word_bytes: 0,
            numbers: 0,
            max_number: 0,
        }
    }

    fn sum(&self, bytes: &[u8]) -> u32 {
        bytes
            .iter()
            .map(|&b| u32::from(self.histogram[usize::from(b)]))
            .sum()
    }

    /// Sums the counts of the byte values in `range`.
    fn sum_range(&self, range: std::ops::RangeInclusive<u8>) -> u32 {
        let (start, end) = (usize::from(*range.start()), usize::from(*range.end()));
        self.histogram[start..=end]
            .iter()
            .map(|&n| u32::from(n))
            .sum()
    }

    fn punctuation(&self) -> u32 {
        self.sum_range(b'!'..=b'/')
            + self.sum_range(b':'..=b'@')
            + self.sum_range(b'['..=b'`')
            + self.sum_range(b'{'..=b'~')
    }

    /// Turns the counters into features scaled to roughly [0, 1].
    /// `last_visible` is the last byte read that is not whitespace.
    fn dense(&self, total_len: usize, last_visible: u8) -> [f32; DENSE_COUNT] {
        let bytes = self.sum_range(0..=255).max(1) as f32;
        let log = |n: u32, scale: f32| (n as f32).ln_1p() / scale;
        let fraction = |n: u32| n as f32 / bytes;
        let mean_word = self.word_bytes as f32 / self.words.max(1) as f32;
        [
            (total_len as f32).ln_1p() / 10.0,
            log(self.words, 8.0),
            fraction(self.sum_range(b'0'..=b'9')),
            fraction(self.sum_range(b'A'..=b'Z')),
            fraction(self.punctuation()),
            log(self.sum(b"\n"), 5.0),
            log(self.sum(b"?"), 3.0),
            log(self.sum(b"{};`_#"), 5.0),
            log(self.sum(b"+*/^=%$"), 5.0),
            log(self.numbers, 4.0),
            fraction(self.sum_range(0x80..=0xff)),
            log(self.sum(b".!?"), 5.0),
            (mean_word / 10.0).min(2.0),
            (self.max_number as f32 / 10.0).min(2.0),
            f32::from(u8::from(last_visible == b'?')),
            f32::from(u8::from(last_visible == b':')),
        ]
    }
}

/// The state of one pass over a prompt.
struct Scanner<F: FnMut(u32)> {
    emit: F,
    counts: Counts,
    chars: u32,
    chars_len: u32,
    last_char: u8,
    word: u64,
    word_len: u32,
    last_word_byte: u8,
    previous_token: u64,
    tokens: usize,
    /// The last tokens, as a ring indexed by `tokens % REGION_TOKENS`.
    last_tokens: [u64; REGION_TOKENS],
}

impl<F: FnMut(u32)> Scanner<F> {
    fn new(emit: F) -> Self {
        Scanner {
            emit,
            counts: Counts::new(),
            chars: 0,
            chars_len: 0,
            last_char: b' ',
            word: FNV_OFFSET,
            word_len: 0,
            last_word_byte: 0,
            previous_token: 0,
            tokens: 0,
            last_tokens: [0; REGION_TOKENS],
        }
    }

    /// Scans bytes with the per-byte state in local variables. Kept in
    /// fields, that state was stored and reloaded around every call that
    /// emits a token, which cost several instructions per byte.
    fn feed(&mut self, bytes: &[u8]) {
        let mut chars = self.chars;
        let mut chars_len = self.chars_len;
        let mut last_char = self.last_char;
        let mut word = self.word;
        let mut word_len = self.word_len;
        let mut last_word_byte = self.last_word_byte;

        for &byte in bytes {
            let slot = &mut self.counts.histogram[usize::from(byte)];
            *slot = slot.wrapping_add(1);
            let (class, normal) = BYTES[usize::from(byte)];

            if normal != b' ' || last_char != b' ' {
                last_char = normal;
                chars = (chars << 8) | u32::from(normal);
                chars_len += 1;
                if chars_len >= 4 {
                    (self.emit)(char_hash(chars));
                }
            }

            if class == Class::Word {
                word = fnv_step(word, normal);
                word_len += 1;
                last_word_byte = normal;
                continue;
            }
            if word_len > 0 {
                self.word_token(word, word_len, last_word_byte);
                word = FNV_OFFSET;
                word_len = 0;
            }
            if class != Class::Space {
                self.token(fnv_step(FNV_OFFSET, normal));
            }
        }

        self.chars = chars;
        self.chars_len = chars_len;
        self.last_char = last_char;
        self.word = word;
        self.word_len = word_len;
        self.last_word_byte = last_word_byte;
    }

    /// Separates the head from the tail of a truncated prompt.
    fn gap(&mut self) {
        self.end_word();
        if self.last_char != b' ' {
            self.last_char = b' ';
            self.chars = (self.chars << 8) | u32::from(b' ');
            self.chars_len += 1;
            if self.chars_len >= 4 {
                (self.emit)(char_hash(self.chars));
            }
        }
        self.previous_token = 0;
    }

    fn end_word(&mut self) {
        if self.word_len == 0 {
            return;
        }
        self.word_token(self.word, self.word_len, self.last_word_byte);
        self.word = FNV_OFFSET;
        self.word_len = 0;
    }

    /// Counts a finished word and emits its token. A word whose last byte
    /// is a digit counts as a number.
    fn word_token(&mut self, word: u64, len: u32, last_byte: u8) {
        let counts = &mut self.counts;
        counts.words += 1;
        counts.word_bytes += len;
        if last_byte == b'0' {
            counts.numbers += 1;
            counts.max_number = counts.max_number.max(len);
        }
        self.token(word);
    }

    /// Emits the unigram, the bigram with the previous token, and for the
    /// first tokens position- and region-tagged copies.
    fn token(&mut self, token: u64) {
        (self.emit)(mix(token ^ SALT_UNIGRAM));
        let pair = self.previous_token.wrapping_mul(FNV_PRIME).rotate_left(29) ^ token;
        (self.emit)(mix(pair ^ SALT_BIGRAM));
        if self.tokens < REGION_TOKENS {
            if self.tokens < EDGE_TOKENS {
                let tagged = token ^ SALT_FIRST.wrapping_mul(self.tokens as u64 + 1);
                (self.emit)(mix(tagged));
            }
            (self.emit)(mix(token ^ SALT_HEAD_REGION));
        }
        self.last_tokens[self.tokens % REGION_TOKENS] = token;
        self.tokens += 1;
        self.previous_token = token;
    }

    /// Emits position- and region-tagged copies of the last tokens and
    /// returns the numeric features.
    fn finish(mut self, total_len: usize, last_visible: u8) -> [f32; DENSE_COUNT] {
        self.end_word();
        let known = self.tokens.min(REGION_TOKENS);
        for position in 0..known {
            let token = self.last_tokens[(self.tokens - 1 - position) % REGION_TOKENS];
            if position < EDGE_TOKENS {
                let tagged = token ^ SALT_LAST.wrapping_mul(position as u64 + 1);
                (self.emit)(mix(tagged));
            }
            (self.emit)(mix(token ^ SALT_TAIL_REGION));
        }
        self.counts.dense(total_len, last_visible)
    }
}

/// Scans the bounded window of `prompt`, calls `emit` with the 32-bit hash
/// of every feature occurrence, and returns the numeric features.
pub fn scan<F: FnMut(u32)>(prompt: &str, emit: F) -> [f32; DENSE_COUNT] {
    let (head, tail) = read_window(prompt.as_bytes());
    let mut scanner = Scanner::new(emit);
    scanner.feed(head);
    if !tail.is_empty() {
        scanner.gap();
        scanner.feed(tail);
    }
    let read = if tail.is_empty() { head } else { tail };
    let last_visible = read
        .iter()
        .rev()
        .find(|b| !b.is_ascii_whitespace())
        .copied();
    scanner.finish(prompt.len(), last_visible.unwrap_or(b' '))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashes(prompt: &str) -> Vec<u32> {
        let mut out = Vec::new();
        scan(prompt, |h| out.push(h));
        out
    }

    #[test]
    fn mix_spreads_low_bits() {
        let buckets: std::collections::HashSet<u32> =
            (0..4096u64).map(|i| mix(i) & 0xfff).collect();
        assert!(buckets.len() > 2400, "{} distinct buckets", buckets.len());
    }

    #[test]
    fn scan_is_deterministic() {
        let prompt = "Write a Python function that sorts a list.";
        assert_eq!(hashes(prompt), hashes(prompt));
    }

    #[test]
    fn case_and_digits_are_normalized() {
        assert_eq!(hashes("Add 12 and 7"), hashes("add 45 and 3"));
        assert_ne!(hashes("Add 12 and 7"), hashes("Add 123 and 7"));
    }

    #[test]
    fn word_order_changes_bigrams() {
        let a: std::collections::HashSet<u32> = hashes("dog bites man").into_iter().collect();
        let b: std::collections::HashSet<u32> = hashes("man bites dog").into_iter().collect();
        assert_ne!(a, b);
        assert!(a.intersection(&b).count() > 0);
    }

    #[test]
    fn feature_count_matches_tokens() {
        // "ab cd" has 2 words, and each word gives 6 features: a unigram, a
        // bigram, a first- and a last-position feature, and a head- and a
        // tail-region feature. Its 5 bytes give 2 character 4-grams.
        assert_eq!(hashes("ab cd").len(), 14);
    }

    #[test]
    fn long_prompt_reads_bounded_window() {
        let long = "word ".repeat(10_000);
        let short = "word ".repeat((HEAD_BYTES + TAIL_BYTES) / 5);
        let long_count = hashes(&long).len();
        let short_count = hashes(&short).len();
        assert!(
            long_count <= short_count + 8,
            "{long_count} vs {short_count}"
        );
    }

    #[test]
    fn window_keeps_head_and_tail() {
        let prompt = vec![b'x'; HEAD_BYTES + TAIL_BYTES + 10];
        let (head, tail) = read_window(&prompt);
        assert_eq!(head.len(), HEAD_BYTES);
        assert_eq!(tail.len(), TAIL_BYTES);
        let (whole, none) = read_window(&prompt[..100]);
        assert_eq!(whole.len(), 100);
        assert!(none.is_empty());
    }

    #[test]
    fn dense_features_reflect_text() {
        let question = scan("What is 2 + 2?", |_| {});
        let code = scan("fn main() { let x = 1; }", |_| {});
        assert_eq!(question[14], 1.0, "ends with a question mark");
        assert!(question[2] > 0.0, "digit fraction");
        assert!(code[7] > question[7], "code markers");
        assert_eq!(code[14], 0.0);
    }

    #[test]
    fn numbers_are_counted() {
        let none = scan("add these up", |_| {});
        let two = scan("add 12 and 345 now", |_| {});
        assert_eq!(none[9], 0.0, "no numbers");
        assert!(two[9] > 0.0, "two numbers");
        assert!(
            (two[13] - 0.3).abs() < 1e-6,
            "longest number has 3 digits: {}",
            two[13]
        );
    }

    #[test]
    fn punctuation_ranges_match_std() {
        let mut counts = Counts::new();
        counts.histogram = [1; 256];
        let expected = (0..=255u8).filter(u8::is_ascii_punctuation).count();
        assert_eq!(counts.punctuation() as usize, expected);
        assert_eq!(counts.sum_range(0..=255), 256);
    }

    #[test]
    fn empty_prompt_has_no_features() {
        assert!(hashes("").is_empty());
        assert!(scan("", |_| {}).iter().all(|v| v.is_finite()));
    }
}
