//! Counters behind the numeric features. Byte categories that only word
//! bytes can be in (digits, capitals, non-ASCII bytes) are counted from
//! the masks that normalizing fills. The other categories contain only bytes
//! that are tokens of their own, so only those bytes are looked up in a
//! table, with one addition each. Word statistics also come from the masks.

use super::DENSE_COUNT;

/// Byte categories counted for the numeric features. Each has a field in
/// [`COUNT_INFO`], so that one addition per token byte counts them all.
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

/// Index of the digit category in [`COUNTED`], counted from masks.
const DIGITS: usize = 0;
/// Index of the capital letter category in [`COUNTED`], counted from masks.
const UPPER: usize = 1;
/// Index of the non-ASCII category in [`COUNTED`]; it matches by range.
const NON_ASCII: usize = 7;

/// Width of each category's field in a [`COUNT_INFO`] entry.
const COUNT_BITS: u32 = 7;

/// The maximum count of a field.
const FIELD_MAX: u32 = (1 << COUNT_BITS) - 1;

const _: () = assert!(COUNT_BITS as usize * COUNTED.len() <= 64);

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

/// Word statistics of the bytes read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct WordStats {
    pub words: u32,
    pub word_bytes: u32,
    /// Words that end with a digit.
    pub numbers: u32,
    /// Length of the longest word that ends with a digit.
    pub max_number: u32,
}

/// Counts of the bytes read per category of [`COUNTED`], plus word
/// statistics. They become numeric features at the end.
pub(super) struct Counts {
    pub bytes: u32,
    categories: [u32; COUNTED.len()],
    pub words: WordStats,
    /// Token bytes counted in `packed` and not yet in `categories`.
    pending: u32,
    /// One [`COUNT_BITS`] field per category.
    packed: u64,
}

impl Counts {
    /// Starts the counts of `bytes` bytes read, with the counts of digits,
    /// capitals and non-ASCII bytes, all of them word bytes.
    pub fn new(bytes: u32, digits: u32, upper: u32, non_ascii: u32) -> Counts {
        let mut categories = [0; COUNTED.len()];
        categories[DIGITS] = digits;
        categories[UPPER] = upper;
        categories[NON_ASCII] = non_ascii;
        Counts {
            bytes,
            categories,
            words: WordStats::default(),
            pending: 0,
            packed: 0,
        }
    }

    /// Counts the categories of the bytes of `text` at the set bits of
    /// `tokens`, which marks bytes that are tokens of their own. Bit `i`
    /// is `text[offset + i]`.
    #[inline(always)]
    pub fn count_token_bytes(&mut self, text: &[u8], offset: usize, mut tokens: u64) {
        let count = tokens.count_ones();
        if self.pending + count > FIELD_MAX {
            self.unpack();
        }
        self.pending += count;
        while tokens != 0 {
            let at = offset + tokens.trailing_zeros() as usize;
            tokens &= tokens - 1;
            self.packed += COUNT_INFO[usize::from(text[at])];
        }
    }

    /// Adds the packed fields to the category counts.
    fn unpack(&mut self) {
        for (category, count) in self.categories.iter_mut().enumerate() {
            *count +=
                ((self.packed >> (COUNT_BITS * category as u32)) & u64::from(FIELD_MAX)) as u32;
        }
        self.packed = 0;
        self.pending = 0;
    }

    /// Returns the count of each category of [`COUNTED`].
    pub fn categories(&mut self) -> [u32; COUNTED.len()] {
        self.unpack();
        self.categories
    }

    /// Turns the counters into features scaled to roughly [0, 1].
    /// `last_visible` is the last byte read that is not whitespace.
    pub fn dense(&mut self, total_len: usize, last_visible: u8) -> [f32; DENSE_COUNT] {
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
        ] = self.categories();
        let words = &self.words;
        let bytes = self.bytes.max(1) as f32;
        let log = |n: u32, scale: f32| (n as f32).ln_1p() / scale;
        let fraction = |n: u32| n as f32 / bytes;
        let mean_word = words.word_bytes as f32 / words.words.max(1) as f32;
        [
            (total_len as f32).ln_1p() / 10.0,
            log(words.words, 8.0),
            fraction(digits),
            fraction(upper),
            fraction(punctuation),
            log(newlines, 5.0),
            log(questions, 3.0),
            log(code, 5.0),
            log(math, 5.0),
            log(words.numbers, 4.0),
            fraction(non_ascii),
            log(sentence_ends, 5.0),
            (mean_word / 10.0).min(2.0),
            (words.max_number as f32 / 10.0).min(2.0),
            f32::from(u8::from(last_visible == b'?')),
            f32::from(u8::from(last_visible == b':')),
        ]
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Counts the categories of `bytes` one byte at a time, from the
    /// definitions in [`COUNTED`].
    pub fn reference_categories(bytes: &[u8]) -> [u32; COUNTED.len()] {
        let mut counts = [0; COUNTED.len()];
        for &byte in bytes {
            for (category, members) in COUNTED.iter().enumerate() {
                let member = members.contains(&byte) || (category == NON_ASCII && byte >= 0x80);
                counts[category] += u32::from(member);
            }
        }
        counts
    }

    #[test]
    fn punctuation_category_matches_std() {
        for byte in 0..=255u8 {
            let info = COUNT_INFO[usize::from(byte)];
            let punctuation = (info >> (2 * COUNT_BITS)) & u64::from(FIELD_MAX);
            assert_eq!(punctuation == 1, byte.is_ascii_punctuation(), "byte {byte}");
        }
    }

    #[test]
    fn token_byte_counts_survive_long_runs() {
        // 640 question marks in a row would overflow a field unless the
        // packed counters are unpacked often enough.
        let text = [b'?'; 640];
        let mut counts = Counts::new(640, 0, 0, 0);
        for offset in (0..text.len()).step_by(64) {
            counts.count_token_bytes(&text, offset, u64::MAX);
        }
        assert_eq!(counts.categories(), reference_categories(&text));
    }
}
