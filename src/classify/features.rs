//! Feature extraction: hashed word unigrams, word bigrams, character
//! 5-grams and position- and region-tagged edge tokens, plus a few numeric
//! features.
//!
//! Extraction normalizes the bytes read into a buffer on the stack, with
//! bit masks of word, digit and punctuation bytes, and then walks the
//! masks to emit features. Most of the work is straight-line code without
//! a branch per byte. Each hashed feature goes to a [`Sink`], so the caller
//! can accumulate logits without storing the features anywhere.
//!
//! The functions on the way from [`scan_to_sink`] to the sink are inlined
//! into their caller, so that a caller compiled for wider vector
//! instructions gets the whole scan compiled for them too.

mod counts;
mod tokens;

use super::normalize;
use counts::{Counts, WordStats};

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
pub const FEATURE_SET: u32 = 5;

/// The maximum number of features for one [`Heads`] value that a scan adds
/// to a sink between two calls of [`Sink::settle`] for that value.
pub const SETTLE_AFTER: usize = 16;

/// Length of the character n-grams, which start at every byte.
const CHAR_GRAM: usize = 5;

/// The heads a hashed feature feeds. Character n-grams help the task head
/// tell task types apart, but the difficulty head ranks prompts better
/// without them: they let it memorize training prompts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Heads {
    Both,
    TaskOnly,
}

impl Heads {
    /// Returns a dense index, for sinks that keep one sum per value.
    pub const fn index(self) -> usize {
        match self {
            Heads::Both => 0,
            Heads::TaskOnly => 1,
        }
    }
}

/// Receives the hashed features of a scan.
pub trait Sink {
    /// Whether the scan walks tokens with AVX-512 instructions. A sink sets
    /// it only when it exists inside code compiled for the features that
    /// `tokens::wide::detected` checks, because the walk is inlined there.
    const WIDE_TOKENS: bool = false;

    /// Takes the 32-bit hash of one feature occurrence that feeds `heads`.
    fn add(&mut self, hash: u32, heads: Heads);

    /// Marks a point where a sink that sums in narrow lanes can fold its
    /// partial sums for `heads`. A scan adds at most [`SETTLE_AFTER`]
    /// features for `heads` between two of these calls, and calls it after
    /// the last one.
    fn settle(&mut self, heads: Heads) {
        let _ = heads;
    }

    /// Adds the [`SETTLE_AFTER`] character n-grams that start at the first
    /// bytes of `block`, which feed [`Heads::TaskOnly`], as calls of
    /// [`Sink::add`] with [`char_gram_hash`] would. A sink may hash them
    /// several at a time instead.
    fn add_char_grams(&mut self, block: &CharBlock) {
        for offset in 0..SETTLE_AFTER {
            let gram = le_u64(&block[offset..offset + 8]);
            self.add(char_gram_hash(gram), Heads::TaskOnly);
        }
    }
}

/// The bytes behind one block of character n-grams: [`SETTLE_AFTER`]
/// n-grams, and room for a sink to read them 16 bytes at a time.
pub type CharBlock = [u8; CHAR_BLOCK_BYTES];

pub const CHAR_BLOCK_BYTES: usize = SETTLE_AFTER + 8;

/// Adapts a closure called once per feature to [`Sink`].
struct EachFeature<F>(F);

impl<F: FnMut(u32, Heads)> Sink for EachFeature<F> {
    fn add(&mut self, hash: u32, heads: Heads) {
        (self.0)(hash, heads);
    }
}

/// Zero bytes after the text, so that an 8-byte load starting at any text
/// byte stays inside the buffer.
pub(super) const PADDING: usize = 8;

/// Buffer size, in mask words of 64 bytes, for prompts of up to 248
/// bytes. Buffer sizes step up so that short prompts do not pay for
/// clearing a buffer sized for the longest window, and each leaves room
/// for the padding.
const SMALL_WORDS: usize = 4;

/// Buffer size for prompts of up to 1 KiB and a little more.
const SHORT_WORDS: usize = 17;

/// Buffer size for every prompt: the head, one separating space, the tail
/// and the padding, rounded up to whole mask words.
const FULL_WORDS: usize = (HEAD_BYTES + 1 + TAIL_BYTES + PADDING).div_ceil(64);

/// Salt and multiplier of the character n-gram hash. Vector code computes
/// the same hash, so it needs them too.
pub const CHAR_SALT: u64 = 0x6a09_e667_f3bc_c909;
pub const CHAR_MULTIPLY: u64 = 0x9e37_79b9_7f4a_7c15;
const SALT_WORD: u64 = 0xa409_3822_299f_31d0;

const MULTIPLY_WORD: u64 = 0xff51_afd7_ed55_8ccd;

/// Maps a 64-bit value to a well-mixed 32-bit hash (a multiply-xorshift
/// finalizer), so that masking the low bits picks a uniform bucket.
#[inline(always)]
pub fn mix(value: u64) -> u32 {
    let mut x = value ^ (value >> 33);
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    x as u32
}

/// The mask of the low `n` bytes of a u64 at index `n`. A load from this
/// table takes fewer instructions than computing the shift.
static KEEP_BYTES: [u64; 9] = {
    let mut masks = [u64::MAX; 9];
    let mut n = 0;
    while n < 8 {
        masks[n] = (1 << (8 * n)) - 1;
        n += 1;
    }
    masks
};

/// Mixes the first `len` bytes (at most 8 count) of the little-endian
/// `bytes` into a word hash.
#[inline(always)]
fn mix_word(hash: u64, bytes: u64, len: usize) -> u64 {
    let hash = (hash ^ (bytes & KEEP_BYTES[len.min(8)])).wrapping_mul(MULTIPLY_WORD);
    hash ^ (hash >> 29)
}

/// Returns the parts of `prompt` that are read: the whole prompt, or its
/// first [`HEAD_BYTES`] and last [`TAIL_BYTES`] bytes.
#[inline(always)]
pub fn read_window(prompt: &[u8]) -> (&[u8], &[u8]) {
    if prompt.len() <= HEAD_BYTES + TAIL_BYTES {
        return (prompt, &[]);
    }
    (&prompt[..HEAD_BYTES], &prompt[prompt.len() - TAIL_BYTES..])
}

/// The normalized bytes read, with bit masks of word bytes, of digits and
/// of bytes that are tokens of their own, and counts of capitals and
/// non-ASCII bytes. The buffer has `W` mask words of 64 bytes.
struct Text<const W: usize> {
    bytes: [[u8; 64]; W],
    len: usize,
    words: [u64; W],
    tokens: [u64; W],
    digits: [u64; W],
    upper: u32,
    non_ascii: u32,
}

impl<const W: usize> Text<W> {
    /// Returns the buffer.
    #[inline(always)]
    fn bytes(&self) -> &[u8] {
        self.bytes.as_flattened()
    }

    /// Returns the buffer for writing.
    #[inline(always)]
    fn bytes_mut(&mut self) -> &mut [u8] {
        self.bytes.as_flattened_mut()
    }

    /// Returns the normalized text of `head`, and of `tail` after a
    /// separating space when it is not empty. The caller ensures that the
    /// parts and the padding fit in the `W * 64` bytes of the buffer.
    #[cfg(test)]
    fn new(head: &[u8], tail: &[u8]) -> Self {
        let mut text = Self::empty();
        text.read(head, tail);
        text
    }

    /// Returns an empty text with a zeroed buffer.
    #[inline(always)]
    fn empty() -> Self {
        Text {
            bytes: [[0; 64]; W],
            len: 0,
            words: [0; W],
            tokens: [0; W],
            digits: [0; W],
            upper: 0,
            non_ascii: 0,
        }
    }

    /// Reads and normalizes `head` and `tail` into this empty text, as
    /// [`Text::new`] does. The scan calls this on a text in its own frame,
    /// because returning the text would copy its buffer.
    #[inline(always)]
    fn read(&mut self, head: &[u8], tail: &[u8]) {
        self.copy(head, tail);
        #[cfg(target_arch = "x86_64")]
        if self.normalize_wide() {
            return;
        }
        self.normalize_narrow();
    }

    /// Copies `head`, and `tail` after a separating space when it is not
    /// empty, into this empty text without normalizing them.
    #[inline(always)]
    fn copy(&mut self, head: &[u8], tail: &[u8]) {
        self.bytes_mut()[..head.len()].copy_from_slice(head);
        self.len = head.len();
        if !tail.is_empty() {
            let at = self.len;
            self.bytes_mut()[at] = b' ';
            self.bytes_mut()[at + 1..at + 1 + tail.len()].copy_from_slice(tail);
            self.len += 1 + tail.len();
        }
    }

    /// Normalizes the bytes in place, 32 at a time, fills the masks and
    /// counts capitals and non-ASCII bytes, if the processor has AVX2.
    /// Returns whether it did. The bytes after the text are zeros, which
    /// are neither capitals nor non-ASCII.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn normalize_wide(&mut self) -> bool {
        if !normalize::avx2::detected() {
            return false;
        }
        for at in (0..self.len).step_by(32) {
            // The buffer is whole mask words, so the block is there.
            let Some(input) = self.bytes()[at..].first_chunk::<32>() else {
                break;
            };
            #[allow(unsafe_code)]
            // SAFETY: the processor has AVX2, checked above.
            let block = unsafe { normalize::avx2::normalize(input) };
            self.bytes_mut()[at..at + 32].copy_from_slice(&block.bytes);
            let masks = [block.words, block.tokens, block.digits].map(u64::from);
            let counts = [block.upper, block.non_ascii].map(u32::count_ones);
            self.add_block(at, masks, counts);
        }
        self.clear_padding_bits();
        true
    }

    /// Normalizes like [`Text::normalize_wide`], 16 bytes at a time, on
    /// any processor.
    #[inline(always)]
    fn normalize_narrow(&mut self) {
        for at in (0..self.len).step_by(16) {
            let Some(&input) = self.bytes()[at..].first_chunk::<16>() else {
                break;
            };
            let block = normalize::normalize(input);
            self.bytes_mut()[at..at + 16].copy_from_slice(&block.bytes);
            let masks = [block.words, block.tokens, block.digits].map(u64::from);
            let counts = [block.upper, block.non_ascii].map(u16::count_ones);
            self.add_block(at, masks, counts);
        }
        self.clear_padding_bits();
    }

    /// Adds the word, token and digit masks of the normalized block at
    /// byte `at` (a multiple of its size), and its counts of capitals and
    /// non-ASCII bytes.
    #[inline(always)]
    fn add_block(
        &mut self,
        at: usize,
        [words, tokens, digits]: [u64; 3],
        [upper, non_ascii]: [u32; 2],
    ) {
        let shift = at % 64;
        self.words[at / 64] |= words << shift;
        self.tokens[at / 64] |= tokens << shift;
        self.digits[at / 64] |= digits << shift;
        self.upper += upper;
        self.non_ascii += non_ascii;
    }

    /// Clears the mask bits of the zero padding after the text, which
    /// classifies as tokens.
    #[inline(always)]
    fn clear_padding_bits(&mut self) {
        if !self.len.is_multiple_of(64) {
            let keep = (1u64 << (self.len % 64)) - 1;
            self.words[self.len / 64] &= keep;
            self.tokens[self.len / 64] &= keep;
            self.digits[self.len / 64] &= keep;
        }
    }

    /// Reads 8 bytes starting at `at` as a little-endian integer. The
    /// padding keeps the read inside the buffer for every `at <= len`.
    #[inline(always)]
    fn load(&self, at: usize) -> u64 {
        le_u64(&self.bytes()[at..at + 8])
    }

    /// Returns the start of the word whose last byte is at `last`.
    fn word_start(&self, last: usize) -> usize {
        let mut index = last / 64;
        // The bits from `last` down to the start of its mask word, moved
        // to the top.
        let rest = !self.words[index] << (63 - last % 64);
        if rest != 0 {
            return last + 1 - rest.leading_zeros() as usize;
        }
        while index > 0 {
            index -= 1;
            let rest = !self.words[index];
            if rest != 0 {
                return index * 64 + 64 - rest.leading_zeros() as usize;
            }
        }
        0
    }

    /// Hashes the word in `start..end`, 8 bytes per multiply. Most words
    /// fit in the first 8 bytes, so longer ones take a separate loop.
    /// `end` is greater than `start`.
    #[inline(always)]
    fn word_hash(&self, start: usize, end: usize) -> u64 {
        let len = end - start;
        let mut hash = mix_word(SALT_WORD ^ len as u64, self.load(start), len);
        if len > 8 {
            hash = self.word_hash_rest(hash, start + 8, end);
        }
        hash
    }

    /// Continues [`Text::word_hash`] from `at` for words longer than 8
    /// bytes.
    #[inline(never)]
    fn word_hash_rest(&self, mut hash: u64, mut at: usize, end: usize) -> u64 {
        while at < end {
            hash = mix_word(hash, self.load(at), end - at);
            at += 8;
        }
        hash
    }

    /// Counts the byte categories and the word statistics of the text,
    /// which contains `bytes_read` bytes of the prompt (and a separating space
    /// that is in no category).
    #[inline(always)]
    fn counts(&self, bytes_read: u32) -> Counts {
        let mut digits = 0;
        for index in 0..self.len.div_ceil(64) {
            digits += self.digits[index].count_ones();
        }
        let mut counts = Counts::new(bytes_read, digits, self.upper, self.non_ascii);
        for index in 0..self.len.div_ceil(64) {
            counts.count_token_bytes(self.bytes(), index * 64, self.tokens[index]);
        }
        counts.words = self.word_stats();
        counts
    }

    /// Counts the words, their bytes and the numbers (words that end with
    /// a digit) from the masks, a few instructions per 64 bytes. Only the
    /// longest number needs a look at each number's span.
    #[inline(always)]
    fn word_stats(&self) -> WordStats {
        let mut stats = WordStats::default();
        let mask_words = self.len.div_ceil(64);
        let mut carry = 0u64;
        for index in 0..mask_words {
            let words = self.words[index];
            let next = self.words.get(index + 1).copied().unwrap_or(0);
            let starts = words & !((words << 1) | carry);
            let ends = words & !((words >> 1) | (next << 63));
            carry = words >> 63;
            stats.words += starts.count_ones();
            stats.word_bytes += words.count_ones();
            let mut numbers = ends & self.digits[index];
            stats.numbers += numbers.count_ones();
            while numbers != 0 {
                let last = index * 64 + numbers.trailing_zeros() as usize;
                numbers &= numbers - 1;
                let len = (last + 1 - self.word_start(last)) as u32;
                stats.max_number = stats.max_number.max(len);
            }
        }
        stats
    }
}

/// The maximum prompt length, in bytes, that is read into the smallest
/// buffer.
pub const SMALL_PROMPT: usize = SMALL_WORDS * 64 - PADDING;

/// Returns whether this processor has the AVX-512 features that a sink
/// with [`Sink::WIDE_TOKENS`] needs, beyond AVX2.
#[cfg(target_arch = "x86_64")]
pub fn wide_tokens_detected() -> bool {
    tokens::wide::detected()
}

/// Scans the bounded window of `prompt`, calls `emit` with the 32-bit hash
/// of every feature occurrence and the heads it feeds, and returns the
/// numeric features.
pub fn scan<F: FnMut(u32, Heads)>(prompt: &str, emit: F) -> [f32; DENSE_COUNT] {
    scan_to_sink(prompt, &mut EachFeature(emit))
}

/// Scans like [`scan`], but hands the hashes to `sink` and calls
/// [`Sink::settle`] where the sink may fold partial sums.
#[inline(always)]
pub fn scan_to_sink<S: Sink>(prompt: &str, sink: &mut S) -> [f32; DENSE_COUNT] {
    let bytes = prompt.as_bytes();
    let words = (bytes.len() + PADDING).div_ceil(64);
    if words <= SMALL_WORDS {
        scan_into::<SMALL_WORDS, S>(bytes, sink)
    } else if words <= SHORT_WORDS {
        scan_into::<SHORT_WORDS, S>(bytes, sink)
    } else {
        scan_into::<FULL_WORDS, S>(bytes, sink)
    }
}

#[inline(always)]
fn scan_into<const W: usize, S: Sink>(prompt: &[u8], sink: &mut S) -> [f32; DENSE_COUNT] {
    let (head, tail) = read_window(prompt);
    let mut text = Text::<W>::empty();
    text.read(head, tail);
    let mut counts = text.counts((head.len() + tail.len()) as u32);

    emit_char_grams(&text, sink);
    tokens::emit(&text, sink);

    let read = if tail.is_empty() { head } else { tail };
    let last_visible = read
        .iter()
        .rev()
        .find(|b| !b.is_ascii_whitespace())
        .copied();
    counts.dense(prompt.len(), last_visible.unwrap_or(b' '))
}

/// Hashes the character 5-gram in the low 5 bytes of the little-endian
/// `bytes`: the high half of one 64-bit product.
#[inline(always)]
pub fn char_gram_hash(bytes: u64) -> u32 {
    let keep = u64::MAX >> (64 - 8 * CHAR_GRAM);
    (((bytes & keep) ^ CHAR_SALT).wrapping_mul(CHAR_MULTIPLY) >> 32) as u32
}

/// Emits the character n-gram starting at each byte, settling the sink
/// after every [`SETTLE_AFTER`] of them.
#[inline(always)]
fn emit_char_grams<const W: usize, S: Sink>(text: &Text<W>, sink: &mut S) {
    let grams = text.len.saturating_sub(CHAR_GRAM - 1);
    let mut start = 0;
    while start + SETTLE_AFTER <= grams {
        // The block ends at most 4 bytes past the text, inside the
        // padding, so it is always there. The loop below would take over.
        let Some(block) = text.bytes()[start..].first_chunk::<CHAR_BLOCK_BYTES>() else {
            break;
        };
        sink.add_char_grams(block);
        sink.settle(Heads::TaskOnly);
        start += SETTLE_AFTER;
    }
    for at in start..grams {
        sink.add(char_gram_hash(text.load(at)), Heads::TaskOnly);
    }
    sink.settle(Heads::TaskOnly);
}

/// Reads the first 8 bytes of `bytes` as a little-endian integer.
#[inline(always)]
fn le_u64(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashes(prompt: &str) -> Vec<u32> {
        let mut out = Vec::new();
        scan(prompt, |h, _| out.push(h));
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
        // tail-region feature. Its 5 bytes make one 5-gram.
        assert_eq!(hashes("ab cd").len(), 1 + 2 * 6);
        // 7 bytes make 5-grams at offsets 0 to 2.
        assert_eq!(hashes("ab cd e").len(), 3 + 3 * 6);
    }

    #[test]
    fn only_character_grams_skip_difficulty() {
        let mut task_only = 0;
        let mut both = 0;
        scan("ab cd e", |_, heads| match heads {
            Heads::TaskOnly => task_only += 1,
            Heads::Both => both += 1,
        });
        assert_eq!(task_only, 3);
        assert_eq!(both, 3 * 6);
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
        let question = scan("What is 2 + 2?", |_, _| {});
        let code = scan("fn main() { let x = 1; }", |_, _| {});
        assert_eq!(question[14], 1.0, "ends with a question mark");
        assert!(question[2] > 0.0, "digit fraction");
        assert!(code[7] > question[7], "code markers");
        assert_eq!(code[14], 0.0);
    }

    #[test]
    fn numbers_are_counted() {
        let none = scan("add these up", |_, _| {});
        let two = scan("add 12 and 345 now", |_, _| {});
        assert_eq!(none[9], 0.0, "no numbers");
        assert!(two[9] > 0.0, "two numbers");
        assert!(
            (two[13] - 0.3).abs() < 1e-6,
            "longest number has 3 digits: {}",
            two[13]
        );
    }

    /// Splits `text` the way the tokenizer is documented to: runs of word
    /// bytes, and each punctuation byte or newline on its own.
    fn reference_spans(text: &[u8]) -> Vec<(usize, usize, bool)> {
        let is_word = |b: u8| b.is_ascii_alphanumeric() || b >= 0x80;
        let mut spans = Vec::new();
        let mut at = 0;
        while at < text.len() {
            let byte = text[at];
            if is_word(byte) {
                let end = (at..text.len())
                    .find(|&i| !is_word(text[i]))
                    .unwrap_or(text.len());
                spans.push((at, end, true));
                at = end;
            } else {
                if !byte.is_ascii_whitespace() || byte == b'\n' {
                    spans.push((at, at + 1, false));
                }
                at += 1;
            }
        }
        spans
    }

    fn spans(text: &[u8]) -> Vec<(usize, usize, bool)> {
        let text = Text::<FULL_WORDS>::new(text, &[]);
        let mut spans = Vec::new();
        tokens::for_each_token(&text, |start, end, word| spans.push((start, end, word)));
        spans
    }

    #[test]
    fn tokens_match_reference_across_mask_words() {
        // Longer than two mask words, so it covers one whole.
        let long_word = b"x".repeat(150);
        let pieces: [&[u8]; 9] = [
            b"word",
            b" ",
            b"x",
            b"\n",
            b"{};",
            b"caf\xc3\xa9",
            b"antidisestablishmentarianism",
            b"\t\x0b\r",
            &long_word,
        ];
        // A deterministic sequence of pieces puts word and token edges at
        // every offset around the 64-byte mask boundaries.
        let mut text = Vec::new();
        let mut state = 7u32;
        while text.len() < 1500 {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            text.extend_from_slice(pieces[(state >> 16) as usize % pieces.len()]);
            assert_eq!(spans(&text), reference_spans(&text), "{} bytes", text.len());
        }
    }

    #[test]
    fn tokens_match_reference_at_mask_edges() {
        // Words and tokens that end just before, at and just after a
        // 64-byte mask edge, followed by words and tokens.
        for len in [62, 63, 64, 65, 127, 128, 129] {
            for rest in [" x", ". y", "z w", "\n\n", "  "] {
                let text = format!("{}{rest}", "a".repeat(len));
                assert_eq!(
                    spans(text.as_bytes()),
                    reference_spans(text.as_bytes()),
                    "{text:?}"
                );
            }
        }
    }

    /// Word statistics counted from the reference token spans.
    fn reference_stats(text: &[u8]) -> WordStats {
        let mut stats = WordStats::default();
        for (start, end, word) in reference_spans(text) {
            if !word {
                continue;
            }
            let len = (end - start) as u32;
            stats.words += 1;
            stats.word_bytes += len;
            if text[end - 1].is_ascii_digit() {
                stats.numbers += 1;
                stats.max_number = stats.max_number.max(len);
            }
        }
        stats
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn wide_and_narrow_normalizing_agree() {
        let long = "Caf\u{e9} 42\tX{y};\n".repeat(400);
        for prompt in [
            "",
            "a",
            "Ab 9\n,\t\u{e9}x_\x0b\r\x0cZ.",
            &long[..100],
            &long,
        ] {
            let (head, tail) = read_window(prompt.as_bytes());
            let mut wide = Text::<FULL_WORDS>::empty();
            wide.copy(head, tail);
            if !wide.normalize_wide() {
                return;
            }
            let mut narrow = Text::<FULL_WORDS>::empty();
            narrow.copy(head, tail);
            narrow.normalize_narrow();
            assert_eq!(wide.bytes, narrow.bytes, "{} bytes", prompt.len());
            assert_eq!(wide.words, narrow.words, "{} bytes", prompt.len());
            assert_eq!(wide.tokens, narrow.tokens, "{} bytes", prompt.len());
            assert_eq!(wide.digits, narrow.digits, "{} bytes", prompt.len());
            assert_eq!(wide.upper, narrow.upper, "{} bytes", prompt.len());
            assert_eq!(wide.non_ascii, narrow.non_ascii, "{} bytes", prompt.len());
        }
    }

    #[test]
    fn category_counts_match_reference() {
        let every_ascii: String = (1..128u8).map(char::from).collect();
        let prompts = [
            String::new(),
            every_ascii.repeat(3),
            "?\n".repeat(400),
            "x^2 + {y} = `z`; #1 CAF\u{c9} \u{65e5}\u{672c}!\t".repeat(300),
            "Why? Because.\r\n".repeat(30),
        ];
        for prompt in &prompts {
            let (head, tail) = read_window(prompt.as_bytes());
            let text = Text::<FULL_WORDS>::new(head, tail);
            let mut counts = text.counts((head.len() + tail.len()) as u32);
            let mut expected = counts::tests::reference_categories(head);
            for (total, tail_count) in expected
                .iter_mut()
                .zip(counts::tests::reference_categories(tail))
            {
                *total += tail_count;
            }
            assert_eq!(counts.categories(), expected, "{} bytes", prompt.len());
        }
    }

    #[test]
    fn word_stats_match_reference() {
        let long_number = b"1234567890".repeat(9);
        let pieces: [&[u8]; 8] = [
            b"word",
            b" ",
            b"x9",
            b"\n2024-01-01",
            b"12,5",
            &long_number,
            b"caf\xc3\xa9",
            b"v2.0 ",
        ];
        let mut text = Vec::new();
        let mut state = 11u32;
        while text.len() < 1500 {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            text.extend_from_slice(pieces[(state >> 16) as usize % pieces.len()]);
            let stats = Text::<FULL_WORDS>::new(&text, &[]).word_stats();
            assert_eq!(stats, reference_stats(&text), "{} bytes", text.len());
        }
    }

    #[test]
    fn word_hash_ignores_position() {
        let word = b"antidisestablishmentarianism";
        let mut text = vec![b' '; 70];
        text.extend_from_slice(word);
        let shifted = Text::<FULL_WORDS>::new(&text, &[]);
        let alone = Text::<FULL_WORDS>::new(word, &[]);
        assert_eq!(
            shifted.word_hash(70, 70 + word.len()),
            alone.word_hash(0, word.len())
        );
        assert_ne!(alone.word_hash(0, 8), alone.word_hash(0, 9));
    }

    #[test]
    fn buffer_size_does_not_change_features() {
        let prompt = "Sort this list: [3, 1, 2].\nThen explain why.";
        let mut short = Vec::new();
        let mut full = Vec::new();
        let mut small = Vec::new();
        let dense_small =
            scan_into::<SMALL_WORDS, _>(prompt.as_bytes(), &mut EachFeature(|h, _| small.push(h)));
        let dense_short =
            scan_into::<SHORT_WORDS, _>(prompt.as_bytes(), &mut EachFeature(|h, _| short.push(h)));
        let dense_full =
            scan_into::<FULL_WORDS, _>(prompt.as_bytes(), &mut EachFeature(|h, _| full.push(h)));
        assert_eq!(small, full);
        assert_eq!(short, full);
        assert_eq!(dense_small, dense_full);
        assert_eq!(dense_short, dense_full);
    }

    #[test]
    fn lengths_around_buffer_sizes() {
        for len in [
            1, 15, 16, 17, 63, 64, 65, 248, 249, 1024, 1080, 1081, 5120, 5121, 6000,
        ] {
            let prompt = "ab1 ".repeat(len / 4 + 1)[..len].to_string();
            let mut count = 0;
            let dense = scan(&prompt, |_, _| count += 1);
            assert!(count > 0, "{len} bytes");
            assert!(dense.iter().all(|v| v.is_finite()), "{len} bytes");
        }
    }

    #[test]
    fn empty_prompt_has_no_features() {
        assert!(hashes("").is_empty());
        assert!(scan("", |_, _| {}).iter().all(|v| v.is_finite()));
    }

    /// Folds the feature hashes and numeric features of `prompts` into one
    /// value.
    fn fingerprint(prompts: &[&str]) -> u64 {
        let mut state = 0xcbf2_9ce4_8422_2325u64;
        let mut fold = |value: u64| state = (state ^ value).wrapping_mul(0x0100_0000_01b3);
        for prompt in prompts {
            let mut hashes = Vec::new();
            let dense = scan(prompt, |hash, heads| hashes.push((hash, heads)));
            for (hash, heads) in hashes {
                fold(u64::from(hash) << 1 | u64::from(heads == Heads::Both));
            }
            for value in dense {
                fold(u64::from(value.to_bits()));
            }
        }
        state
    }

    #[test]
    fn features_are_stable() {
        // The compiled-in weights were trained on these features. A change
        // here must come with a new FEATURE_SET and retrained weights.
        let long = "Explain step 12 of the proof: x^2 + 3x = 40. ".repeat(150);
        let prompts = [
            "",
            "hi",
            "Write a Python function that sorts a list of 10000 numbers.",
            "fn main() {\n    let v = vec![1, 2, 3];\n    println!(\"{v:?}\");\n}",
            "R\u{e9}sume ce texte en deux phrases, s'il te pla\u{ee}t?",
            "antidisestablishmentarianism supercalifragilistic 2024-01-01T10:00",
            &long,
        ];
        assert_eq!(fingerprint(&prompts), 4_989_302_827_443_688_396);
    }
}
