//! Feature extraction: hashed word unigrams, word bigrams, character
//! 5-grams and position- and region-tagged edge tokens, plus a few numeric
//! features.
//!
//! Extraction normalizes the bytes read into a buffer on the stack, with
//! bit masks of word and punctuation bytes, and then walks the masks to
//! emit features. Most of the work is straight-line code without a branch
//! per byte. It calls a closure for each hashed feature, so the caller can
//! accumulate logits without storing the features anywhere.

use super::normalize;

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

/// Number of leading and trailing tokens that also get a position-tagged
/// feature.
const EDGE_TOKENS: usize = 3;

/// Number of leading and trailing tokens that also get a feature tagged
/// with their region (instructions tend to sit at either end of a prompt).
const REGION_TOKENS: usize = 12;

/// Size of the ring of last tokens: a power of two, so the index is a
/// mask, and at least [`REGION_TOKENS`].
const LAST_RING: usize = REGION_TOKENS.next_power_of_two();

/// Zero bytes after the text, so that an 8-byte load starting at any text
/// byte stays inside the buffer.
const PADDING: usize = 8;

/// Buffer size for prompts of up to 1 KiB and a little more. Buffer sizes
/// are whole mask words and leave room for the padding.
const SHORT_CAPACITY: usize = 1024 + 64;

/// Buffer size for every prompt: the head, one separating space, the tail
/// and the padding, rounded up to whole mask words.
const FULL_CAPACITY: usize = (HEAD_BYTES + 1 + TAIL_BYTES + PADDING).next_multiple_of(64);

/// Number of 64-bit mask words that cover [`FULL_CAPACITY`] bytes.
const MASK_WORDS: usize = FULL_CAPACITY.div_ceil(64);

const SALT_UNIGRAM: u64 = 0x517c_c1b7_2722_0a95;
const SALT_BIGRAM: u64 = 0x2f1c_9a3e_55d0_7b13;
const SALT_CHARS: u64 = 0x6a09_e667_f3bc_c909;
const SALT_FIRST: u64 = 0x3c6e_f372_fe94_f82b;
const SALT_LAST: u64 = 0x1f83_d9ab_fb41_bd6b;
const SALT_HEAD_REGION: u64 = 0x5be0_cd19_137e_2179;
const SALT_TAIL_REGION: u64 = 0x9b05_688c_2b3e_6c1f;
const SALT_WORD: u64 = 0xa409_3822_299f_31d0;

const MULTIPLY: u64 = 0x9e37_79b9_7f4a_7c15;
const MULTIPLY_WORD: u64 = 0xff51_afd7_ed55_8ccd;

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

/// Hashes a value that is already well mixed, or a short one such as a
/// character 5-gram, with one multiply: the high half of the product
/// depends on every input bit.
fn bucket_hash(value: u64) -> u32 {
    (value.wrapping_mul(MULTIPLY) >> 32) as u32
}

/// Returns the parts of `prompt` that are read: the whole prompt, or its
/// first [`HEAD_BYTES`] and last [`TAIL_BYTES`] bytes.
pub fn read_window(prompt: &[u8]) -> (&[u8], &[u8]) {
    if prompt.len() <= HEAD_BYTES + TAIL_BYTES {
        return (prompt, &[]);
    }
    (&prompt[..HEAD_BYTES], &prompt[prompt.len() - TAIL_BYTES..])
}

/// Byte categories counted for the numeric features, one 6-bit field
/// each in [`COUNT_INFO`], so that one addition per byte counts them all.
const COUNTED: [&[u8]; 9] = [
    b"0123456789",
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    b"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
    b"\n",
    b"?",
    b"{};`_#",
    b"+*/^=%$",
    b"",
    b".!?",
];

/// Index of the non-ASCII category in [`COUNTED`]; it matches by range.
const NON_ASCII: usize = 7;

/// Width of each category's field in a [`COUNT_INFO`] entry.
const COUNT_BITS: u32 = 6;

/// Bytes folded into packed counters before they are added up. A 6-bit
/// field counts to 63 at most.
const COUNT_FLUSH: usize = 63;

/// A 1 in the field of each category of [`COUNTED`] that the byte value
/// belongs to, so that one addition per byte counts all categories.
static COUNT_INFO: [u64; 256] = {
    let mut table = [0u64; 256];
    let mut byte = 0;
    while byte < 256 {
        let mut info = 0u64;
        let mut category = 0;
        while category < COUNTED.len() {
            let members = COUNTED[category];
            let mut member = category == NON_ASCII && byte >= 0x80;
            let mut i = 0;
            while i < members.len() {
                member |= members[i] as usize == byte;
                i += 1;
            }
            if member {
                info |= 1 << (COUNT_BITS * category as u32);
            }
            category += 1;
        }
        table[byte] = info;
        byte += 1;
    }
    table
};

/// Counts of the bytes read per category of [`COUNTED`], plus word
/// statistics. They become numeric features at the end.
struct Counts {
    bytes: u32,
    categories: [u32; COUNTED.len()],
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
            bytes: 0,
            categories: [0; COUNTED.len()],
            words: 0,
            word_bytes: 0,
            numbers: 0,
            max_number: 0,
        }
    }

    /// Counts the categories of `bytes`, [`COUNT_FLUSH`] bytes per
    /// packed sum.
    fn count(&mut self, bytes: &[u8]) {
        let field = (1u64 << COUNT_BITS) - 1;
        for chunk in bytes.chunks(COUNT_FLUSH) {
            let packed: u64 = chunk.iter().map(|&b| COUNT_INFO[usize::from(b)]).sum();
            for (category, count) in self.categories.iter_mut().enumerate() {
                *count += ((packed >> (COUNT_BITS * category as u32)) & field) as u32;
            }
        }
        self.bytes += bytes.len() as u32;
    }

    /// Turns the counters into features scaled to roughly [0, 1].
    /// `last_visible` is the last byte read that is not whitespace.
    fn dense(&self, total_len: usize, last_visible: u8) -> [f32; DENSE_COUNT] {
        let [
            digits,
            upper,
            punctuation,
            newlines,
            questions,
            code,
            math,
            non_ascii,
            sentence_ends,
        ] = self.categories;
        let bytes = self.bytes.max(1) as f32;
        let log = |n: u32, scale: f32| (n as f32).ln_1p() / scale;
        let fraction = |n: u32| n as f32 / bytes;
        let mean_word = self.word_bytes as f32 / self.words.max(1) as f32;
        [
            (total_len as f32).ln_1p() / 10.0,
            log(self.words, 8.0),
            fraction(digits),
            fraction(upper),
            fraction(punctuation),
            log(newlines, 5.0),
            log(questions, 3.0),
            log(code, 5.0),
            log(math, 5.0),
            log(self.numbers, 4.0),
            fraction(non_ascii),
            log(sentence_ends, 5.0),
            (mean_word / 10.0).min(2.0),
            (self.max_number as f32 / 10.0).min(2.0),
            f32::from(u8::from(last_visible == b'?')),
            f32::from(u8::from(last_visible == b':')),
        ]
    }
}

/// The normalized bytes read, with a bit mask of word bytes and one of
/// bytes that are tokens of their own. `N` is the buffer size, so short
/// prompts do not pay for clearing a buffer sized for the longest window.
struct Text<const N: usize> {
    bytes: [u8; N],
    len: usize,
    words: [u64; MASK_WORDS],
    tokens: [u64; MASK_WORDS],
}

impl<const N: usize> Text<N> {
    /// Normalizes `head`, and `tail` after a separating space when it is
    /// not empty. The caller ensures that the parts and the padding fit in
    /// `N` bytes.
    fn new(head: &[u8], tail: &[u8]) -> Self {
        let mut text = Text {
            bytes: [0; N],
            len: head.len(),
            words: [0; MASK_WORDS],
            tokens: [0; MASK_WORDS],
        };
        text.bytes[..head.len()].copy_from_slice(head);
        if !tail.is_empty() {
            text.bytes[text.len] = b' ';
            text.bytes[text.len + 1..text.len + 1 + tail.len()].copy_from_slice(tail);
            text.len += 1 + tail.len();
        }
        text.normalize();
        text
    }

    /// Normalizes the bytes in place, 16 at a time, and fills the masks.
    fn normalize(&mut self) {
        let end = self.len.next_multiple_of(16);
        for (index, chunk) in self.bytes[..end].chunks_exact_mut(16).enumerate() {
            let mut input = [0u8; 16];
            input.copy_from_slice(chunk);
            let block = normalize::normalize(input);
            chunk.copy_from_slice(&block.bytes);
            let shift = 16 * (index % 4);
            self.words[index / 4] |= u64::from(block.words) << shift;
            self.tokens[index / 4] |= u64::from(block.tokens) << shift;
        }
        // The zero padding after the text classifies as tokens.
        if !self.len.is_multiple_of(64) {
            let keep = (1u64 << (self.len % 64)) - 1;
            self.words[self.len / 64] &= keep;
            self.tokens[self.len / 64] &= keep;
        }
    }

    /// Reads 8 bytes starting at `at` as a little-endian integer. The
    /// padding keeps the read inside the buffer for every `at <= len`.
    fn load(&self, at: usize) -> u64 {
        let mut word = [0u8; 8];
        word.copy_from_slice(&self.bytes[at..at + 8]);
        u64::from_le_bytes(word)
    }

    /// Returns the end of the word that starts at `start`: the first
    /// position after it whose word bit is clear.
    fn word_end(&self, start: usize) -> usize {
        let mut index = start / 64;
        let mut rest = !self.words[index] >> (start % 64);
        if rest != 0 {
            return start + rest.trailing_zeros() as usize;
        }
        loop {
            index += 1;
            rest = !self.words[index];
            if rest != 0 {
                return index * 64 + rest.trailing_zeros() as usize;
            }
        }
    }

    /// Hashes the word in `start..end`, 8 bytes per multiply. The loop
    /// tests its end only after the first 8 bytes, because most words are
    /// that short. `end` is greater than `start`.
    fn word_hash(&self, start: usize, end: usize) -> u64 {
        let mut hash = SALT_WORD ^ (end - start) as u64;
        let mut at = start;
        loop {
            let keep = u64::MAX >> (64 - 8 * (end - at).min(8));
            hash = (hash ^ (self.load(at) & keep)).wrapping_mul(MULTIPLY_WORD);
            hash ^= hash >> 29;
            at += 8;
            if at >= end {
                return hash;
            }
        }
    }
}

/// Hashes gathered before they are handed to the sink: enough for the
/// features of a few tokens, or for the character n-grams of
/// [`BATCH`] bytes.
const BATCH: usize = 64;

/// Receives hashed features in batches. Batches let the classifier keep its
/// sums in registers across many features, instead of a call per feature.
pub trait Sink {
    /// Takes the 32-bit hashes of feature occurrences that all feed `heads`.
    fn add(&mut self, hashes: &[u32], heads: Heads);
}

/// Adapts a closure called once per feature to [`Sink`].
struct EachFeature<F>(F);

impl<F: FnMut(u32, Heads)> Sink for EachFeature<F> {
    fn add(&mut self, hashes: &[u32], heads: Heads) {
        for &hash in hashes {
            (self.0)(hash, heads);
        }
    }
}

/// The maximum number of features one token emits: a unigram, a bigram,
/// and a position- and a region-tagged copy.
const PER_TOKEN: usize = 4;

/// Token state: the previous token for bigrams and the last tokens for the
/// tail-tagged features. Token features feed both heads, and are passed on
/// in batches. The batch is a separate array: the sink reads it, and that
/// would keep the other fields in memory if they shared a struct with it.
struct Tokens<'s, S: Sink> {
    sink: &'s mut S,
    batch: &'s mut [u32; BATCH],
    batched: usize,
    previous: u64,
    count: usize,
    /// The last tokens, as a ring indexed by `count % LAST_RING`.
    last: [u64; LAST_RING],
}

impl<'s, S: Sink> Tokens<'s, S> {
    fn new(sink: &'s mut S, batch: &'s mut [u32; BATCH]) -> Self {
        Tokens {
            sink,
            batch,
            batched: 0,
            previous: 0,
            count: 0,
            last: [0; LAST_RING],
        }
    }

    fn emit(&mut self, hash: u32) {
        self.batch[self.batched] = hash;
        self.batched += 1;
    }

    fn flush(&mut self) {
        self.sink.add(&self.batch[..self.batched], Heads::Both);
        self.batched = 0;
    }

    /// Emits the unigram, the bigram with the previous token, and for the
    /// first tokens position- and region-tagged copies.
    fn push(&mut self, token: u64) {
        if self.batched > BATCH - PER_TOKEN {
            self.flush();
        }
        self.emit(bucket_hash(token ^ SALT_UNIGRAM));
        let pair = self.previous.rotate_left(23).wrapping_mul(MULTIPLY) ^ token;
        self.emit(bucket_hash(pair ^ SALT_BIGRAM));
        if self.count < REGION_TOKENS {
            if self.count < EDGE_TOKENS {
                let tagged = token ^ SALT_FIRST.wrapping_mul(self.count as u64 + 1);
                self.emit(mix(tagged));
            }
            self.emit(mix(token ^ SALT_HEAD_REGION));
        }
        self.last[self.count % LAST_RING] = token;
        self.count += 1;
        self.previous = token;
    }

    /// Emits position- and region-tagged copies of the last tokens and
    /// passes on what is left in the batch.
    fn finish(&mut self) {
        let known = self.count.min(REGION_TOKENS);
        for position in 0..known {
            if self.batched > BATCH - 2 {
                self.flush();
            }
            let token = self.last[(self.count - 1 - position) % LAST_RING];
            if position < EDGE_TOKENS {
                let tagged = token ^ SALT_LAST.wrapping_mul(position as u64 + 1);
                self.emit(mix(tagged));
            }
            self.emit(mix(token ^ SALT_TAIL_REGION));
        }
        if self.batched > 0 {
            self.flush();
        }
    }
}

/// Scans the bounded window of `prompt`, calls `emit` with the 32-bit hash
/// of every feature occurrence and the heads it feeds, and returns the
/// numeric features.
pub fn scan<F: FnMut(u32, Heads)>(prompt: &str, emit: F) -> [f32; DENSE_COUNT] {
    scan_batches(prompt, &mut EachFeature(emit))
}

/// Scans like [`scan`], but hands the hashes to `sink` in batches.
pub fn scan_batches<S: Sink>(prompt: &str, sink: &mut S) -> [f32; DENSE_COUNT] {
    let bytes = prompt.as_bytes();
    if bytes.len() + PADDING <= SHORT_CAPACITY {
        scan_into::<SHORT_CAPACITY, S>(bytes, sink)
    } else {
        scan_into::<FULL_CAPACITY, S>(bytes, sink)
    }
}

fn scan_into<const N: usize, S: Sink>(prompt: &[u8], sink: &mut S) -> [f32; DENSE_COUNT] {
    let (head, tail) = read_window(prompt);
    let mut counts = Counts::new();
    counts.count(head);
    counts.count(tail);
    let text = Text::<N>::new(head, tail);

    emit_char_grams(&text, sink);
    let mut batch = [0; BATCH];
    let mut tokens = Tokens::new(sink, &mut batch);
    emit_tokens(&text, &mut counts, &mut tokens);
    tokens.finish();

    let read = if tail.is_empty() { head } else { tail };
    let last_visible = read
        .iter()
        .rev()
        .find(|b| !b.is_ascii_whitespace())
        .copied();
    counts.dense(prompt.len(), last_visible.unwrap_or(b' '))
}

/// Emits the character n-gram starting at each byte, [`BATCH`] at a time.
fn emit_char_grams<const N: usize, S: Sink>(text: &Text<N>, sink: &mut S) {
    let keep = u64::MAX >> (64 - 8 * CHAR_GRAM);
    let grams = text.len.saturating_sub(CHAR_GRAM - 1);
    let mut batch = [0u32; BATCH];
    let mut start = 0;
    while start < grams {
        let len = (grams - start).min(BATCH);
        for (offset, hash) in batch[..len].iter_mut().enumerate() {
            let gram = text.load(start + offset) & keep;
            *hash = bucket_hash(gram ^ SALT_CHARS);
        }
        sink.add(&batch[..len], Heads::TaskOnly);
        start += len;
    }
}

/// Calls `visit` with the span `start..end` of every token in order, and
/// whether it is a word. Tokens are words and single punctuation bytes or
/// newlines, and the spans are found from the masks, one bit scan per
/// token rather than a branch per byte.
fn for_each_token<const N: usize>(text: &Text<N>, mut visit: impl FnMut(usize, usize, bool)) {
    let mut carry = 0u64;
    for index in 0..text.len.div_ceil(64) {
        let words = text.words[index];
        let tokens = text.tokens[index];
        let mut starts = (words & !((words << 1) | carry)) | tokens;
        carry = words >> 63;
        while starts != 0 {
            let bit = starts.trailing_zeros() as usize;
            starts &= starts - 1;
            let start = index * 64 + bit;
            // A punctuation byte is a one-byte token. Its bit in the word
            // mask is clear, so `word_end` returns `start`. Taking the
            // maximum avoids a branch on the token kind, which is hard to
            // predict.
            let end = text.word_end(start).max(start + 1);
            visit(start, end, words >> bit & 1 == 1);
        }
    }
}

/// Emits the features of every token and counts the words and numbers.
/// A punctuation byte is hashed like a one-byte word, and the counts add
/// flags rather than branch, as in [`for_each_token`]. The counters are
/// locals until the end, so that they can stay in registers.
fn emit_tokens<const N: usize, S: Sink>(
    text: &Text<N>,
    counts: &mut Counts,
    tokens: &mut Tokens<'_, S>,
) {
    let (mut words, mut word_bytes, mut numbers, mut max_number) = (0, 0, 0, 0);
    for_each_token(text, |start, end, is_word| {
        let len = (end - start) as u32;
        let is_word = u32::from(is_word);
        words += is_word;
        word_bytes += is_word * len;
        let is_number = u32::from(text.bytes[end - 1] == b'0');
        numbers += is_number;
        max_number = max_number.max(is_number * len);
        tokens.push(text.word_hash(start, end));
    });
    counts.words = words;
    counts.word_bytes = word_bytes;
    counts.numbers = numbers;
    counts.max_number = max_number;
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

    #[test]
    fn punctuation_category_matches_std() {
        let field = (1u64 << COUNT_BITS) - 1;
        for byte in 0..=255u8 {
            let info = COUNT_INFO[usize::from(byte)];
            let punctuation = (info >> (2 * COUNT_BITS)) & field;
            assert_eq!(punctuation == 1, byte.is_ascii_punctuation(), "byte {byte}");
        }
    }

    #[test]
    fn counts_survive_long_runs() {
        // 200 digits in a row overflow a 6-bit field unless the packed
        // counters are flushed often enough.
        let mut counts = Counts::new();
        counts.count(&[b'7'; 200]);
        assert_eq!(counts.categories[0], 200);
        assert_eq!(counts.categories[1], 0);
        assert_eq!(counts.bytes, 200);
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
        let text = Text::<FULL_CAPACITY>::new(text, &[]);
        let mut spans = Vec::new();
        for_each_token(&text, |start, end, word| spans.push((start, end, word)));
        spans
    }

    #[test]
    fn tokens_match_reference_across_mask_words() {
        let pieces: [&[u8]; 8] = [
            b"word",
            b" ",
            b"x",
            b"\n",
            b"{};",
            b"caf\xc3\xa9",
            b"antidisestablishmentarianism",
            b"\t\x0b\r",
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
    fn word_hash_ignores_position() {
        let word = b"antidisestablishmentarianism";
        let mut text = vec![b' '; 70];
        text.extend_from_slice(word);
        let shifted = Text::<FULL_CAPACITY>::new(&text, &[]);
        let alone = Text::<FULL_CAPACITY>::new(word, &[]);
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
        let dense_short = scan_into::<SHORT_CAPACITY, _>(
            prompt.as_bytes(),
            &mut EachFeature(|h, _| short.push(h)),
        );
        let dense_full =
            scan_into::<FULL_CAPACITY, _>(prompt.as_bytes(), &mut EachFeature(|h, _| full.push(h)));
        assert_eq!(short, full);
        assert_eq!(dense_short, dense_full);
    }

    #[test]
    fn lengths_around_buffer_sizes() {
        for len in [
            1, 15, 16, 17, 63, 64, 65, 1024, 1080, 1081, 5120, 5121, 6000,
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
}
