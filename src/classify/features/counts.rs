//! Counters behind the numeric features: byte categories, counted with one
//! table lookup and one addition per byte, and word statistics, counted
//! from the word masks.

use super::DENSE_COUNT;

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
    pub categories: [u32; COUNTED.len()],
    pub words: WordStats,
}

impl Counts {
    pub fn new() -> Counts {
        Counts {
            bytes: 0,
            categories: [0; COUNTED.len()],
            words: WordStats::default(),
        }
    }

    /// Counts the categories of `bytes`, [`COUNT_FLUSH`] bytes per
    /// packed sum.
    #[inline(always)]
    pub fn count(&mut self, bytes: &[u8]) {
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
    pub fn dense(&self, total_len: usize, last_visible: u8) -> [f32; DENSE_COUNT] {
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
mod tests {
    use super::*;

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
}
