//! The hashed feature table in the layout that classification reads, and
//! the sums of the rows that a prompt's features select.
//!
//! Rows are padded from [`OUTPUTS`] to 16 lanes of i16 and added in 16-bit
//! lanes, at most [`ROWS_PER_I16_SUM`] rows at a time, before each partial
//! sum is widened to 32 bits. The weights file bounds every value so that
//! those partial sums cannot overflow. On x86-64 processors with AVX2 the
//! whole scan is compiled for AVX2, and one row is one 256-bit addition.
//! With AVX-512 as well, the token walk takes AVX-512 instructions.
//! Elsewhere the same sums are computed one lane at a time. Tests check
//! that both agree with a plain sum.

use super::features::{self, DENSE_COUNT, Heads, SETTLE_AFTER};
use super::weights::{OUTPUTS, ROWS_PER_I16_SUM};

/// Lanes of a padded row: the outputs, then zeros.
const LANES: usize = 16;

const _: () = assert!(SETTLE_AFTER <= ROWS_PER_I16_SUM);

/// A table of `2^b` padded rows.
#[derive(Clone, Debug)]
pub struct Table {
    rows: Vec<Lanes>,
    /// The fastest scan this processor has the instructions for.
    tier: Tier,
}

/// The scans, from the portable one to the one with the most instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Tier {
    Lanewise,
    Avx2,
    Avx512,
}

impl Tier {
    fn detected() -> Tier {
        if avx2::detected_avx512() {
            Tier::Avx512
        } else if avx2::detected() {
            Tier::Avx2
        } else {
            Tier::Lanewise
        }
    }
}

/// The sums of one prompt's table rows, kept apart by the heads they feed,
/// and the number of features behind each sum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sums {
    pub both: [i32; OUTPUTS],
    pub task_only: [i32; OUTPUTS],
    pub both_count: u32,
    pub task_only_count: u32,
}

impl Table {
    /// Pads `rows`.
    ///
    /// # Panics
    ///
    /// If the number of rows is not a power of two. Decoded weights always
    /// have `2^bucket_bits` rows.
    pub fn new(rows: &[[i16; OUTPUTS]]) -> Table {
        // The scans index rows with a mask, and the AVX2 scan relies on
        // this for memory safety.
        assert!(rows.len().is_power_of_two(), "{} rows", rows.len());
        Table {
            rows: rows.iter().map(Lanes::new).collect(),
            tier: Tier::detected(),
        }
    }

    /// Scans `prompt` and sums the rows of its features. Returns the sums
    /// and the numeric features.
    pub fn scan(&self, prompt: &str) -> (Sums, [f32; DENSE_COUNT]) {
        // The AVX-512 scan is slower on the shortest prompts: compiled for
        // AVX-512, the parts other than the token walk lose more than the
        // walk gains.
        let tier = if prompt.len() <= features::SMALL_PROMPT {
            self.tier.min(Tier::Avx2)
        } else {
            self.tier
        };
        self.scan_with(tier, prompt)
    }

    /// Scans like [`Table::scan`] with the scan of `tier`, or of the
    /// detected tier when `tier` is higher.
    fn scan_with(&self, tier: Tier, prompt: &str) -> (Sums, [f32; DENSE_COUNT]) {
        #[cfg(target_arch = "x86_64")]
        #[allow(unsafe_code)]
        match tier.min(self.tier) {
            // SAFETY: the tier is at most the detected tier, so the
            // processor has every feature that the scan enables.
            Tier::Avx512 => return unsafe { avx2::scan_avx512(&self.rows, prompt) },
            // SAFETY: as above.
            Tier::Avx2 => return unsafe { avx2::scan(&self.rows, prompt) },
            Tier::Lanewise => {}
        }
        let mut sink = LanewiseSink::new(&self.rows);
        let dense = features::scan_to_sink(prompt, &mut sink);
        (sink.finish(), dense)
    }
}

/// A padded row as plain lanes, aligned for one 256-bit load.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(32))]
struct Lanes([i16; LANES]);

impl Lanes {
    fn new(row: &[i16; OUTPUTS]) -> Lanes {
        let mut lanes = [0; LANES];
        lanes[..OUTPUTS].copy_from_slice(row);
        Lanes(lanes)
    }
}

/// Feature counts per head. They are separate fields rather than an array
/// indexed by head, because the compiler packs such an array into one
/// register and then spends instructions on every update.
#[derive(Clone, Copy, Default)]
struct FeatureCounts {
    both: u32,
    task_only: u32,
}

impl FeatureCounts {
    #[inline(always)]
    fn add_one(&mut self, heads: Heads) {
        match heads {
            Heads::Both => self.both += 1,
            Heads::TaskOnly => self.task_only += 1,
        }
    }
}

/// Copies the output lanes of two sums per head into [`Sums`].
fn sums_of(wide: &[[i32; LANES]; 2], counts: FeatureCounts) -> Sums {
    let output_lanes = |lanes: &[i32; LANES]| {
        let mut out = [0; OUTPUTS];
        out.copy_from_slice(&lanes[..OUTPUTS]);
        out
    };
    Sums {
        both: output_lanes(&wide[Heads::Both.index()]),
        task_only: output_lanes(&wide[Heads::TaskOnly.index()]),
        both_count: counts.both,
        task_only_count: counts.task_only,
    }
}

/// The portable sink: partial sums in i16 lanes, folded into i32 lanes
/// when the scan settles.
struct LanewiseSink<'t> {
    rows: &'t [Lanes],
    part: [[i16; LANES]; 2],
    wide: [[i32; LANES]; 2],
    counts: FeatureCounts,
}

impl<'t> LanewiseSink<'t> {
    fn new(rows: &'t [Lanes]) -> Self {
        LanewiseSink {
            rows,
            part: [[0; LANES]; 2],
            wide: [[0; LANES]; 2],
            counts: FeatureCounts::default(),
        }
    }

    fn finish(&self) -> Sums {
        debug_assert!(self.part.iter().flatten().all(|&lane| lane == 0));
        sums_of(&self.wide, self.counts)
    }
}

impl features::Sink for LanewiseSink<'_> {
    #[inline(always)]
    fn add(&mut self, hash: u32, heads: Heads) {
        let row = &self.rows[hash as usize & (self.rows.len() - 1)].0;
        let part = &mut self.part[heads.index()];
        for (sum, &value) in part.iter_mut().zip(row) {
            *sum = sum.wrapping_add(value);
        }
        self.counts.add_one(heads);
    }

    #[inline(always)]
    fn settle(&mut self, heads: Heads) {
        let part = &mut self.part[heads.index()];
        for (sum, value) in self.wide[heads.index()].iter_mut().zip(part.iter()) {
            *sum += i32::from(*value);
        }
        *part = [0; LANES];
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx2 {
    pub fn detected() -> bool {
        false
    }

    pub fn detected_avx512() -> bool {
        false
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! The scan compiled for AVX2, with its sums in 256-bit registers.
    //! `scan` enables the features, and every function on the way to the
    //! sink is inlined into it, so the sink's intrinsics run only inside
    //! code compiled for them.

    use std::arch::x86_64::{
        __m256i, _mm_loadu_si128, _mm256_add_epi16, _mm256_add_epi32, _mm256_and_si256,
        _mm256_blend_epi32, _mm256_broadcastsi128_si256, _mm256_castsi256_si128,
        _mm256_cvtepi16_epi32, _mm256_extracti128_si256, _mm256_load_si256, _mm256_mul_epu32,
        _mm256_mullo_epi32, _mm256_set1_epi32, _mm256_setr_epi8, _mm256_setzero_si256,
        _mm256_shuffle_epi8, _mm256_slli_epi32, _mm256_srli_epi64, _mm256_storeu_si256,
        _mm256_xor_si256,
    };

    use super::features::{CHAR_MULTIPLY, CHAR_SALT, CharBlock, SETTLE_AFTER};
    use super::{DENSE_COUNT, FeatureCounts, Heads, LANES, Lanes, Sums, features, sums_of};

    /// Byte offset of a row from the start of the table: its index times
    /// the row size.
    const ROW_SHIFT: i32 = 5;
    const _: () = assert!(size_of::<Lanes>() == 1 << ROW_SHIFT);

    /// Returns whether this processor has every feature that [`scan`]
    /// enables.
    pub fn detected() -> bool {
        std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("bmi1")
            && std::arch::is_x86_feature_detected!("bmi2")
            && std::arch::is_x86_feature_detected!("lzcnt")
            && std::arch::is_x86_feature_detected!("popcnt")
    }

    /// Returns the low and the high half of `value`, each in all eight
    /// 32-bit lanes.
    #[inline(always)]
    fn halves(value: u64) -> [__m256i; 2] {
        #[allow(unsafe_code)]
        // SAFETY: as in `Avx2Sink::add`, this runs only inside `scan`.
        unsafe {
            [
                _mm256_set1_epi32(value as u32 as i32),
                _mm256_set1_epi32((value >> 32) as u32 as i32),
            ]
        }
    }

    /// Returns whether this processor also has the AVX-512 features of
    /// [`scan_avx512`].
    pub fn detected_avx512() -> bool {
        detected() && features::wide_tokens_detected()
    }

    /// Partial sums per head in 16 i16 lanes, and their widened totals in
    /// two vectors of 8 i32 lanes. `WIDE` selects the AVX-512 token walk.
    struct Avx2Sink<'t, const WIDE: bool> {
        rows: &'t [Lanes],
        mask: usize,
        part: [__m256i; 2],
        wide: [[__m256i; 2]; 2],
        counts: FeatureCounts,
    }

    /// Scans `prompt` with the sums in AVX2 registers. `rows.len()` is a
    /// power of two.
    #[target_feature(enable = "avx2,bmi1,bmi2,lzcnt,popcnt")]
    pub fn scan(rows: &[Lanes], prompt: &str) -> (Sums, [f32; DENSE_COUNT]) {
        scan_to::<false>(rows, prompt)
    }

    /// Scans like [`scan`], and walks the tokens with AVX-512.
    #[target_feature(enable = "avx2,bmi1,bmi2,lzcnt,popcnt")]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vbmi2")]
    pub fn scan_avx512(rows: &[Lanes], prompt: &str) -> (Sums, [f32; DENSE_COUNT]) {
        scan_to::<true>(rows, prompt)
    }

    /// Scans `prompt` into the sums of `rows`. Both scans inline this body.
    #[inline(always)]
    fn scan_to<const WIDE: bool>(rows: &[Lanes], prompt: &str) -> (Sums, [f32; DENSE_COUNT]) {
        #[allow(unsafe_code)]
        // SAFETY: both callers enable AVX2.
        let zero = unsafe { _mm256_setzero_si256() };
        let mut sink = Avx2Sink::<WIDE> {
            rows,
            mask: rows.len() - 1,
            part: [zero; 2],
            wide: [[zero; 2]; 2],
            counts: FeatureCounts::default(),
        };
        let dense = features::scan_to_sink(prompt, &mut sink);

        let mut wide = [[0i32; LANES]; 2];
        for (lanes, halves) in wide.iter_mut().zip(&sink.wide) {
            for (half, vector) in lanes.chunks_exact_mut(8).zip(halves) {
                #[allow(unsafe_code)]
                // SAFETY: `half` has room for the 8 lanes of 4 bytes that
                // the unaligned store writes.
                unsafe {
                    _mm256_storeu_si256(half.as_mut_ptr().cast(), *vector);
                }
            }
        }
        (sums_of(&wide, sink.counts), dense)
    }

    impl<const WIDE: bool> features::Sink for Avx2Sink<'_, WIDE> {
        const WIDE_TOKENS: bool = WIDE;

        #[inline(always)]
        fn add(&mut self, hash: u32, heads: Heads) {
            let index = hash as usize & self.mask;
            debug_assert!(index < self.rows.len());
            let part = &mut self.part[heads.index()];
            #[allow(unsafe_code)]
            // SAFETY: `mask` is the table length minus one, and the length
            // is a power of two, so `index` is in bounds. A row is aligned
            // to 32 bytes for the aligned load. The sink exists only inside
            // `scan`, which enables AVX2, and this function is inlined
            // into it.
            unsafe {
                let row = self.rows.get_unchecked(index);
                let row = _mm256_load_si256((row as *const Lanes).cast());
                *part = _mm256_add_epi16(*part, row);
            }
            self.counts.add_one(heads);
        }

        /// Hashes the n-grams 8 at a time, in 32-bit lanes, as
        /// [`features::char_gram_hash`] does, and adds their rows.
        #[inline(always)]
        fn add_char_grams(&mut self, block: &CharBlock) {
            #[allow(unsafe_code)]
            // SAFETY: the loads read 16 bytes at offsets 0 and 8 of the
            // 24-byte block. Every row offset is masked to the table, whose
            // rows are 32-byte aligned. The volatile reads read entries of
            // a local array. As in `add`, this runs only inside `scan`.
            unsafe {
                // Shuffles that move byte `i + k` of the 16 loaded bytes
                // into byte `k` of 32-bit lane `i`: the first four bytes of
                // the gram at offset `i` (`low_bytes`), and its fifth byte
                // (`high_byte`). Lanes 4 to 7 read the upper copy of the
                // broadcast bytes.
                let low_bytes = _mm256_setr_epi8(
                    0, 1, 2, 3, 1, 2, 3, 4, 2, 3, 4, 5, 3, 4, 5, 6, //
                    4, 5, 6, 7, 5, 6, 7, 8, 6, 7, 8, 9, 7, 8, 9, 10,
                );
                let high_byte = _mm256_setr_epi8(
                    4, -1, -1, -1, 5, -1, -1, -1, 6, -1, -1, -1, 7, -1, -1, -1, //
                    8, -1, -1, -1, 9, -1, -1, -1, 10, -1, -1, -1, 11, -1, -1, -1,
                );
                let row_mask = _mm256_set1_epi32(self.mask as i32);
                let base = self.rows.as_ptr().cast::<u8>();
                // The hash is bits 32 to 63 of (gram ^ salt) * multiplier.
                // With x and m split into 32-bit halves, those bits are
                // the high half of x_low * m_low, plus the low halves of
                // x_low * m_high and x_high * m_low.
                let [salt_low, salt_high] = halves(CHAR_SALT);
                let [multiply_low, multiply_high] = halves(CHAR_MULTIPLY);
                for half in 0..SETTLE_AFTER / 8 {
                    let bytes = _mm_loadu_si128(block.as_ptr().add(8 * half).cast());
                    let bytes = _mm256_broadcastsi128_si256(bytes);
                    let x_low = _mm256_xor_si256(_mm256_shuffle_epi8(bytes, low_bytes), salt_low);
                    let x_high = _mm256_xor_si256(_mm256_shuffle_epi8(bytes, high_byte), salt_high);
                    let even = _mm256_mul_epu32(x_low, multiply_low);
                    let odd = _mm256_mul_epu32(_mm256_srli_epi64::<32>(x_low), multiply_low);
                    let carried =
                        _mm256_blend_epi32::<0b1010_1010>(_mm256_srli_epi64::<32>(even), odd);
                    let hash = _mm256_add_epi32(
                        carried,
                        _mm256_add_epi32(
                            _mm256_mullo_epi32(x_low, multiply_high),
                            _mm256_mullo_epi32(x_high, multiply_low),
                        ),
                    );
                    let offsets = _mm256_slli_epi32::<ROW_SHIFT>(_mm256_and_si256(hash, row_mask));
                    // The volatile reads keep the offsets in memory.
                    // Otherwise the compiler takes each one out of the
                    // vector with an extract, two operations on the vector
                    // units that also hash, and the scan is 4% slower.
                    let mut lanes = [0u32; 8];
                    _mm256_storeu_si256(lanes.as_mut_ptr().cast(), offsets);
                    let part = &mut self.part[Heads::TaskOnly.index()];
                    for offset in &lanes {
                        let offset = std::ptr::read_volatile(offset) as usize;
                        let row = _mm256_load_si256(base.add(offset).cast());
                        *part = _mm256_add_epi16(*part, row);
                    }
                }
            }
            self.counts.task_only += SETTLE_AFTER as u32;
        }

        #[inline(always)]
        fn settle(&mut self, heads: Heads) {
            let part = &mut self.part[heads.index()];
            let wide = &mut self.wide[heads.index()];
            #[allow(unsafe_code)]
            // SAFETY: as in `add`, this runs only inside `scan`.
            unsafe {
                let low = _mm256_cvtepi16_epi32(_mm256_castsi256_si128(*part));
                let high = _mm256_cvtepi16_epi32(_mm256_extracti128_si256::<1>(*part));
                wide[0] = _mm256_add_epi32(wide[0], low);
                wide[1] = _mm256_add_epi32(wide[1], high);
                *part = _mm256_setzero_si256();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::weights::TABLE_LIMIT;

    /// Rows with values up to the limit in both directions, so that the
    /// 16-bit partial sums come close to overflowing.
    fn extreme_rows(bits: u32) -> Vec<[i16; OUTPUTS]> {
        (0..1usize << bits)
            .map(|i| {
                std::array::from_fn(|k| match (i + k) % 3 {
                    0 => TABLE_LIMIT,
                    1 => -TABLE_LIMIT,
                    _ => (i * 7 + k) as i16 % TABLE_LIMIT,
                })
            })
            .collect()
    }

    /// Sums the rows of the features that `features::scan` reports one
    /// at a time, in i32.
    fn reference(rows: &[[i16; OUTPUTS]], prompt: &str) -> (Sums, [f32; DENSE_COUNT]) {
        let mut sums = Sums {
            both: [0; OUTPUTS],
            task_only: [0; OUTPUTS],
            both_count: 0,
            task_only_count: 0,
        };
        let dense = features::scan(prompt, |hash, heads| {
            let row = &rows[hash as usize & (rows.len() - 1)];
            let (sum, count) = match heads {
                Heads::Both => (&mut sums.both, &mut sums.both_count),
                Heads::TaskOnly => (&mut sums.task_only, &mut sums.task_only_count),
            };
            for (total, &value) in sum.iter_mut().zip(row) {
                *total += i32::from(value);
            }
            *count += 1;
        });
        (sums, dense)
    }

    fn prompts() -> Vec<String> {
        vec![
            String::new(),
            "hi".to_owned(),
            "Write a Rust function that merges two sorted vectors.".to_owned(),
            "fn main() { let x = [1, 2, 3]; println!(\"{x:?}\"); }\n".repeat(20),
            "!!!???...;;;".repeat(100),
            "caf\u{e9} na\u{ef}ve \u{65e5}\u{672c}\u{8a9e} 12345 ".repeat(40),
            "antidisestablishmentarianism ".repeat(300),
            "word ".repeat(2_000),
        ]
    }

    /// Returns the tiers this processor can run, the detected one last.
    fn tiers(table: &Table) -> Vec<Tier> {
        [Tier::Lanewise, Tier::Avx2, Tier::Avx512]
            .into_iter()
            .filter(|&tier| tier <= table.tier)
            .collect()
    }

    #[test]
    fn scan_matches_plain_sum() {
        let rows = extreme_rows(10);
        let table = Table::new(&rows);
        for prompt in prompts() {
            let expected = reference(&rows, &prompt);
            let head = &prompt[..prompt.len().min(40)];
            assert_eq!(table.scan(&prompt), expected, "{head:?}");
            for tier in tiers(&table) {
                assert_eq!(
                    table.scan_with(tier, &prompt),
                    expected,
                    "{tier:?} {head:?}"
                );
            }
        }
    }

    #[test]
    fn rows_at_the_limit_do_not_overflow() {
        for value in [TABLE_LIMIT, -TABLE_LIMIT] {
            let rows = vec![[value; OUTPUTS]; 256];
            let table = Table::new(&rows);
            for prompt in prompts() {
                let expected = reference(&rows, &prompt);
                let head = &prompt[..prompt.len().min(40)];
                for tier in tiers(&table) {
                    assert_eq!(
                        table.scan_with(tier, &prompt),
                        expected,
                        "{tier:?} {value} {head:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn padded_rows_keep_their_lanes() {
        let rows = extreme_rows(8);
        let table = Table::new(&rows);
        for (row, padded) in rows.iter().zip(&table.rows) {
            assert_eq!(&padded.0[..OUTPUTS], row);
            assert!(padded.0[OUTPUTS..].iter().all(|&v| v == 0));
        }
    }
}
