//! Byte normalization for feature extraction, 16 bytes at a time. On
//! x86-64 it uses SSE2, which every x86-64 processor has, and elsewhere it
//! works one byte at a time. x86-64 processors with AVX2 can also
//! normalize 32 bytes at a time. All versions give the same output, which
//! tests check for every byte value.

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
const fn normal_of(byte: u8) -> u8 {
    match class_of(byte) {
        Class::Space => b' ',
        _ if byte.is_ascii_digit() => b'0',
        _ => byte.to_ascii_lowercase(),
    }
}

/// Sixteen normalized bytes and their class masks, byte `i` in bit `i`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    pub bytes: [u8; 16],
    /// Word bytes: ASCII letters and digits, and every non-ASCII byte.
    pub words: u16,
    /// Bytes that are a token of their own: punctuation, control bytes
    /// other than whitespace, and newlines.
    pub tokens: u16,
    /// ASCII digits, which are also word bytes.
    pub digits: u16,
    /// ASCII capitals, which are also word bytes.
    pub upper: u16,
    /// Bytes of 0x80 and above, which are also word bytes.
    pub non_ascii: u16,
}

/// Normalizes 16 bytes and classifies each of them.
pub fn normalize(input: [u8; 16]) -> Block {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    #[allow(unsafe_code)]
    // SAFETY: the function only needs SSE2, and the cfg above admits this
    // code only into builds that enable SSE2 for every function.
    unsafe {
        sse2::normalize(input)
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    {
        normalize_bytewise(input)
    }
}

/// The portable version of [`normalize`], one byte at a time.
pub fn normalize_bytewise(input: [u8; 16]) -> Block {
    let mut block = Block {
        bytes: [0; 16],
        words: 0,
        tokens: 0,
        digits: 0,
        upper: 0,
        non_ascii: 0,
    };
    for (i, &byte) in input.iter().enumerate() {
        block.bytes[i] = normal_of(byte);
        block.digits |= u16::from(byte.is_ascii_digit()) << i;
        block.upper |= u16::from(byte.is_ascii_uppercase()) << i;
        block.non_ascii |= u16::from(!byte.is_ascii()) << i;
        match class_of(byte) {
            Class::Word => block.words |= 1 << i,
            Class::Punct | Class::Newline => block.tokens |= 1 << i,
            Class::Space => {}
        }
    }
    block
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod sse2 {
    //! SSE2 is part of the x86-64 baseline. Each function enables it, so
    //! the intrinsics are safe to call inside.

    use std::arch::x86_64::{
        __m128i, _mm_and_si128, _mm_andnot_si128, _mm_cmpeq_epi8, _mm_cmpgt_epi8, _mm_cmplt_epi8,
        _mm_cvtsi128_si64, _mm_movemask_epi8, _mm_or_si128, _mm_set_epi64x, _mm_set1_epi8,
        _mm_setzero_si128, _mm_unpackhi_epi64,
    };

    use super::Block;

    /// Returns all ones in the lanes whose byte is in `low..=high`. Both
    /// bounds are ASCII, and the comparison is signed, so bytes of 0x80
    /// and above, which compare as negative, are never in range.
    #[target_feature(enable = "sse2")]
    fn in_range(bytes: __m128i, low: u8, high: u8) -> __m128i {
        let above = _mm_cmpgt_epi8(bytes, _mm_set1_epi8(low as i8 - 1));
        let below = _mm_cmplt_epi8(bytes, _mm_set1_epi8(high as i8 + 1));
        _mm_and_si128(above, below)
    }

    #[target_feature(enable = "sse2")]
    fn equal(bytes: __m128i, byte: u8) -> __m128i {
        _mm_cmpeq_epi8(bytes, _mm_set1_epi8(byte as i8))
    }

    /// Replaces the lanes selected by `mask` with `byte`.
    #[target_feature(enable = "sse2")]
    fn replace(bytes: __m128i, mask: __m128i, byte: u8) -> __m128i {
        let kept = _mm_andnot_si128(mask, bytes);
        _mm_or_si128(kept, _mm_and_si128(mask, _mm_set1_epi8(byte as i8)))
    }

    #[target_feature(enable = "sse2")]
    pub fn normalize(input: [u8; 16]) -> Block {
        let (low, high) = input.split_at(8);
        let low = i64::from_le_bytes(low.try_into().unwrap_or_default());
        let high = i64::from_le_bytes(high.try_into().unwrap_or_default());
        let bytes = _mm_set_epi64x(high, low);

        let upper = in_range(bytes, b'A', b'Z');
        let lower = in_range(bytes, b'a', b'z');
        let digit = in_range(bytes, b'0', b'9');
        let non_ascii = _mm_cmplt_epi8(bytes, _mm_setzero_si128());
        let newline = equal(bytes, b'\n');
        // The whitespace of `u8::is_ascii_whitespace` other than a newline.
        let space = _mm_or_si128(
            _mm_or_si128(equal(bytes, b' '), equal(bytes, b'\t')),
            _mm_or_si128(equal(bytes, 0x0c), equal(bytes, b'\r')),
        );
        let word = _mm_or_si128(_mm_or_si128(upper, lower), _mm_or_si128(digit, non_ascii));

        let lowered = _mm_or_si128(bytes, _mm_and_si128(upper, _mm_set1_epi8(0x20)));
        let normal = replace(replace(lowered, digit, b'0'), space, b' ');

        let not_token = _mm_or_si128(word, space);
        let token = _mm_andnot_si128(not_token, _mm_set1_epi8(-1));
        debug_assert_eq!(
            _mm_movemask_epi8(_mm_and_si128(token, newline)),
            _mm_movemask_epi8(newline)
        );

        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&_mm_cvtsi128_si64(normal).to_le_bytes());
        let high_half = _mm_unpackhi_epi64(normal, normal);
        out[8..].copy_from_slice(&_mm_cvtsi128_si64(high_half).to_le_bytes());
        Block {
            bytes: out,
            words: _mm_movemask_epi8(word) as u16,
            tokens: _mm_movemask_epi8(token) as u16,
            digits: _mm_movemask_epi8(digit) as u16,
            upper: _mm_movemask_epi8(upper) as u16,
            non_ascii: _mm_movemask_epi8(bytes) as u16,
        }
    }
}

/// Thirty-two normalized bytes and their class masks: the bytes and masks
/// of two [`Block`]s, the second in the high half.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WideBlock {
    pub bytes: [u8; 32],
    pub words: u32,
    pub tokens: u32,
    pub digits: u32,
    pub upper: u32,
    pub non_ascii: u32,
}

#[cfg(target_arch = "x86_64")]
pub mod avx2 {
    //! [`normalize`](super::normalize) for 32 bytes at a time, on
    //! processors with AVX2.

    use std::arch::x86_64::{
        __m256i, _mm256_and_si256, _mm256_andnot_si256, _mm256_cmpeq_epi8, _mm256_cmpgt_epi8,
        _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_or_si256, _mm256_set1_epi8,
        _mm256_setzero_si256, _mm256_storeu_si256,
    };

    use super::WideBlock;

    /// Returns whether this processor has AVX2.
    pub fn detected() -> bool {
        std::arch::is_x86_feature_detected!("avx2")
    }

    /// Returns all ones in the lanes whose byte is in `low..=high`. Both
    /// bounds are ASCII and the comparisons are signed, so bytes of 0x80
    /// and above are never in range.
    #[target_feature(enable = "avx2")]
    fn in_range(bytes: __m256i, low: u8, high: u8) -> __m256i {
        let above = _mm256_cmpgt_epi8(bytes, _mm256_set1_epi8(low as i8 - 1));
        let below = _mm256_cmpgt_epi8(_mm256_set1_epi8(high as i8 + 1), bytes);
        _mm256_and_si256(above, below)
    }

    #[target_feature(enable = "avx2")]
    fn equal(bytes: __m256i, byte: u8) -> __m256i {
        _mm256_cmpeq_epi8(bytes, _mm256_set1_epi8(byte as i8))
    }

    /// Replaces the lanes selected by `mask` with `byte`.
    #[target_feature(enable = "avx2")]
    fn replace(bytes: __m256i, mask: __m256i, byte: u8) -> __m256i {
        let kept = _mm256_andnot_si256(mask, bytes);
        _mm256_or_si256(kept, _mm256_and_si256(mask, _mm256_set1_epi8(byte as i8)))
    }

    /// Normalizes 32 bytes and classifies each of them, as two calls of
    /// [`normalize`](super::normalize) would.
    ///
    /// # Safety
    ///
    /// Callers without AVX2 enabled must check [`detected`] first.
    #[target_feature(enable = "avx2")]
    pub fn normalize(input: &[u8; 32]) -> WideBlock {
        #[allow(unsafe_code)]
        // SAFETY: `input` has the 32 bytes that the unaligned load reads.
        let bytes = unsafe { _mm256_loadu_si256(input.as_ptr().cast()) };

        let upper = in_range(bytes, b'A', b'Z');
        let lower = in_range(bytes, b'a', b'z');
        let digit = in_range(bytes, b'0', b'9');
        let non_ascii = _mm256_cmpgt_epi8(_mm256_setzero_si256(), bytes);
        // The whitespace of `u8::is_ascii_whitespace` other than a newline.
        let space = _mm256_or_si256(
            _mm256_or_si256(equal(bytes, b' '), equal(bytes, b'\t')),
            _mm256_or_si256(equal(bytes, 0x0c), equal(bytes, b'\r')),
        );
        let word = _mm256_or_si256(
            _mm256_or_si256(upper, lower),
            _mm256_or_si256(digit, non_ascii),
        );

        let lowered = _mm256_or_si256(bytes, _mm256_and_si256(upper, _mm256_set1_epi8(0x20)));
        let normal = replace(replace(lowered, digit, b'0'), space, b' ');
        let not_token = _mm256_or_si256(word, space);

        let mut out = [0u8; 32];
        #[allow(unsafe_code)]
        // SAFETY: `out` has room for the 32 bytes that the store writes.
        unsafe {
            _mm256_storeu_si256(out.as_mut_ptr().cast(), normal);
        }
        WideBlock {
            bytes: out,
            words: _mm256_movemask_epi8(word) as u32,
            tokens: !(_mm256_movemask_epi8(not_token) as u32),
            digits: _mm256_movemask_epi8(digit) as u32,
            upper: _mm256_movemask_epi8(upper) as u32,
            non_ascii: _mm256_movemask_epi8(bytes) as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_matches_bytewise() {
        for first in (0..=255u8).step_by(16) {
            let input: [u8; 16] = std::array::from_fn(|i| first + i as u8);
            assert_eq!(
                normalize(input),
                normalize_bytewise(input),
                "bytes from {first}"
            );
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn wide_blocks_match_two_blocks() {
        if !avx2::detected() {
            return;
        }
        // Every byte value at 8 of the 32 positions, 4 in each half.
        for first in (0..=255u8).step_by(4) {
            let input: [u8; 32] =
                std::array::from_fn(|i| first.wrapping_add((i as u8).wrapping_mul(9)));
            #[allow(unsafe_code)]
            // SAFETY: the processor has AVX2, checked above.
            let wide = unsafe { avx2::normalize(&input) };
            let low = normalize(std::array::from_fn(|i| input[i]));
            let high = normalize(std::array::from_fn(|i| input[16 + i]));
            let join = |low: u16, high: u16| u32::from(low) | u32::from(high) << 16;
            let mut bytes = [0u8; 32];
            bytes[..16].copy_from_slice(&low.bytes);
            bytes[16..].copy_from_slice(&high.bytes);
            let expected = WideBlock {
                bytes,
                words: join(low.words, high.words),
                tokens: join(low.tokens, high.tokens),
                digits: join(low.digits, high.digits),
                upper: join(low.upper, high.upper),
                non_ascii: join(low.non_ascii, high.non_ascii),
            };
            assert_eq!(wide, expected, "bytes from {first}");
        }
    }

    #[test]
    fn classes_and_forms() {
        let block = normalize(*b"Ab 9\n,\t\xc3\xa9x_\x0b\r\x0cZ.");
        assert_eq!(&block.bytes, b"ab 0\n, \xc3\xa9x_\x0b  z.");
        // Word bytes: A b 9 \xc3 \xa9 x Z.
        assert_eq!(block.words, 0b0100_0011_1000_1011);
        // Tokens: \n , _ \x0b (vertical tab is not ASCII whitespace in
        // Rust) and the final period.
        assert_eq!(block.tokens, 0b1000_1100_0011_0000);
        assert_eq!(block.digits, 0b0000_0000_0000_1000);
        assert_eq!(block.upper, 0b0100_0000_0000_0001);
        assert_eq!(block.non_ascii, 0b0000_0001_1000_0000);
    }
}
