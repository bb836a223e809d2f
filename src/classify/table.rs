//! The hashed feature table in the layout that classification reads, and
//! the summing of the rows that a batch of feature hashes selects.
//!
//! Rows are padded from [`OUTPUTS`] to 16 lanes of i16 and added in 16-bit
//! lanes, [`ROWS_PER_I16_SUM`] rows at a time, before each partial sum is
//! widened to 32 bits. The weights file bounds every value so that those
//! partial sums cannot overflow. On x86-64 one row is two SSE2 additions,
//! and elsewhere the same sums are computed one lane at a time. A test
//! checks that both agree.

use super::weights::{OUTPUTS, ROWS_PER_I16_SUM};

/// Lanes of a padded row: the outputs, then zeros.
const LANES: usize = 16;

/// A table of `2^b` padded rows.
#[derive(Clone, Debug)]
pub struct Table {
    rows: Vec<Row>,
}

impl Table {
    /// Pads `rows`, whose length is a power of two.
    pub fn new(rows: &[[i16; OUTPUTS]]) -> Table {
        debug_assert!(rows.len().is_power_of_two());
        Table {
            rows: rows.iter().map(Row::new).collect(),
        }
    }

    /// Returns the sum of the rows selected by the low bits of each hash.
    pub fn sum(&self, hashes: &[u32]) -> [i32; OUTPUTS] {
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        #[allow(unsafe_code)]
        // SAFETY: the function only needs SSE2, and the cfg above admits
        // this code only into builds that enable SSE2 for every function.
        unsafe {
            sse2::sum(&self.rows, hashes)
        }
        #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
        {
            sum_lanewise(&self.rows, hashes)
        }
    }
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
type Row = sse2::Row;

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
type Row = Lanes;

/// A padded row as plain lanes.
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

/// The portable version of [`Table::sum`].
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
#[allow(clippy::needless_range_loop)]
fn sum_lanewise(rows: &[Lanes], hashes: &[u32]) -> [i32; OUTPUTS] {
    let mask = rows.len() - 1;
    let mut sum = [0i32; OUTPUTS];
    for chunk in hashes.chunks(ROWS_PER_I16_SUM) {
        let mut part = [0i16; LANES];
        for &hash in chunk {
            let row = rows[hash as usize & mask].0;
            for k in 0..LANES {
                part[k] = part[k].wrapping_add(row[k]);
            }
        }
        for k in 0..OUTPUTS {
            sum[k] += i32::from(part[k]);
        }
    }
    sum
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod sse2 {
    //! SSE2 is part of the x86-64 baseline. Each function enables it, so
    //! the intrinsics are safe to call inside.

    use std::arch::x86_64::{
        __m128i, _mm_add_epi16, _mm_add_epi32, _mm_cvtsi128_si64, _mm_set_epi16, _mm_setzero_si128,
        _mm_srai_epi32, _mm_unpackhi_epi16, _mm_unpackhi_epi64, _mm_unpacklo_epi16,
    };

    use super::{LANES, Lanes, OUTPUTS, ROWS_PER_I16_SUM};

    /// A padded row as two vectors of 8 lanes.
    #[derive(Clone, Copy, Debug)]
    #[repr(C, align(32))]
    pub struct Row([__m128i; 2]);

    impl Row {
        pub fn new(row: &[i16; OUTPUTS]) -> Row {
            let Lanes(l) = Lanes::new(row);
            // SAFETY: SSE2 is enabled for every function in this build.
            #[allow(unsafe_code)]
            unsafe {
                Row([
                    _mm_set_epi16(l[7], l[6], l[5], l[4], l[3], l[2], l[1], l[0]),
                    _mm_set_epi16(l[15], l[14], l[13], l[12], l[11], l[10], l[9], l[8]),
                ])
            }
        }

        /// Returns the lanes, in order.
        #[cfg(test)]
        pub fn lanes(&self) -> [i16; LANES] {
            let mut lanes = [0; LANES];
            for (half, vector) in self.0.iter().enumerate() {
                // SAFETY: SSE2 is enabled for every function in this build.
                #[allow(unsafe_code)]
                let words = unsafe { words(*vector) };
                for (i, word) in words.iter().enumerate() {
                    for j in 0..4 {
                        lanes[half * 8 + i * 4 + j] = (word >> (16 * j)) as i16;
                    }
                }
            }
            lanes
        }
    }

    /// Returns the two 64-bit halves of a vector, low half first.
    #[target_feature(enable = "sse2")]
    fn words(vector: __m128i) -> [u64; 2] {
        [
            _mm_cvtsi128_si64(vector) as u64,
            _mm_cvtsi128_si64(_mm_unpackhi_epi64(vector, vector)) as u64,
        ]
    }

    /// Widens the 8 i16 lanes of `vector` to two vectors of 4 i32 lanes.
    #[target_feature(enable = "sse2")]
    fn widen(vector: __m128i) -> [__m128i; 2] {
        // Each i16 lands in the high half of an i32 lane, and the
        // arithmetic shift brings it down with its sign.
        [
            _mm_srai_epi32(_mm_unpacklo_epi16(vector, vector), 16),
            _mm_srai_epi32(_mm_unpackhi_epi16(vector, vector), 16),
        ]
    }

    #[target_feature(enable = "sse2")]
    pub fn sum(rows: &[Row], hashes: &[u32]) -> [i32; OUTPUTS] {
        let mask = rows.len() - 1;
        let mut wide = [_mm_setzero_si128(); LANES / 4];
        for chunk in hashes.chunks(ROWS_PER_I16_SUM) {
            let mut low = _mm_setzero_si128();
            let mut high = _mm_setzero_si128();
            for &hash in chunk {
                let Row([row_low, row_high]) = rows[hash as usize & mask];
                low = _mm_add_epi16(low, row_low);
                high = _mm_add_epi16(high, row_high);
            }
            let [a, b] = widen(low);
            let [c, d] = widen(high);
            for (total, part) in wide.iter_mut().zip([a, b, c, d]) {
                *total = _mm_add_epi32(*total, part);
            }
        }
        let mut sum = [0i32; LANES];
        for (quarter, vector) in wide.iter().enumerate() {
            for (i, word) in words(*vector).iter().enumerate() {
                sum[quarter * 4 + i * 2] = *word as i32;
                sum[quarter * 4 + i * 2 + 1] = (word >> 32) as i32;
            }
        }
        let mut out = [0; OUTPUTS];
        out.copy_from_slice(&sum[..OUTPUTS]);
        out
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

    fn reference(rows: &[[i16; OUTPUTS]], hashes: &[u32]) -> [i32; OUTPUTS] {
        let mut sum = [0i32; OUTPUTS];
        for &hash in hashes {
            let row = &rows[hash as usize & (rows.len() - 1)];
            for (total, &value) in sum.iter_mut().zip(row) {
                *total += i32::from(value);
            }
        }
        sum
    }

    #[test]
    fn sums_match_a_plain_sum() {
        let rows = extreme_rows(8);
        let table = Table::new(&rows);
        // Every row three times in a row gives long runs of the same sign.
        let hashes: Vec<u32> = (0..3 * 256u32).map(|i| i / 3 + 0x1_0000 * i).collect();
        for len in [0, 1, 15, 16, 17, 63, 64, 65, hashes.len()] {
            assert_eq!(
                table.sum(&hashes[..len]),
                reference(&rows, &hashes[..len]),
                "{len} hashes"
            );
        }
    }

    #[test]
    fn runs_at_the_limit_do_not_overflow() {
        let mut rows = vec![[0i16; OUTPUTS]; 256];
        rows[3] = [TABLE_LIMIT; OUTPUTS];
        rows[4] = [-TABLE_LIMIT; OUTPUTS];
        let table = Table::new(&rows);
        for hash in [3u32, 4] {
            let hashes = vec![hash; 200];
            assert_eq!(table.sum(&hashes), reference(&rows, &hashes));
        }
    }

    #[test]
    fn padded_rows_keep_their_lanes() {
        let rows = extreme_rows(8);
        let table = Table::new(&rows);
        for (row, padded) in rows.iter().zip(&table.rows) {
            let lanes = padded.lanes();
            assert_eq!(&lanes[..OUTPUTS], row);
            assert!(lanes[OUTPUTS..].iter().all(|&v| v == 0));
        }
    }

    #[test]
    fn lanewise_sum_agrees() {
        let rows = extreme_rows(8);
        let lanes: Vec<Lanes> = rows.iter().map(Lanes::new).collect();
        let hashes: Vec<u32> = (0..500u32).map(|i| i.wrapping_mul(2_654_435_761)).collect();
        assert_eq!(sum_lanewise(&lanes, &hashes), reference(&rows, &hashes));
    }
}
