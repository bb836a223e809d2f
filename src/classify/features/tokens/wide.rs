//! The token walk with AVX-512. Compressing the start and end masks of each
//! 64-byte mask word gives every token's span without a branch per token,
//! and the word hashes, unigrams and bigrams are computed eight tokens at
//! a time in 64-bit lanes. The features are the same as those of the walk
//! in the parent module: only their order, and so the sink's settle points,
//! differ.
//!
//! Everything here is inlined into the caller of [`emit`]. A sink sets
//! [`Sink::WIDE_TOKENS`] only inside code compiled for the features that
//! [`detected`] checks, so that is where this code runs.

use std::arch::x86_64::{
    __m256i, __m512i, _mm_loadu_si128, _mm256_storeu_si256, _mm512_add_epi16, _mm512_add_epi64,
    _mm512_alignr_epi64, _mm512_andnot_si512, _mm512_cmpgt_epu64_mask, _mm512_cvtepi64_epi32,
    _mm512_cvtepu16_epi64, _mm512_i64gather_epi64, _mm512_loadu_si512, _mm512_mask_blend_epi64,
    _mm512_mask_i64gather_epi64, _mm512_maskz_compress_epi16, _mm512_mullo_epi64, _mm512_rol_epi64,
    _mm512_set1_epi16, _mm512_set1_epi64, _mm512_setzero_si512, _mm512_slli_epi64,
    _mm512_sllv_epi64, _mm512_srli_epi64, _mm512_storeu_si512, _mm512_sub_epi64, _mm512_xor_si512,
};

use std::mem::MaybeUninit;

use super::super::{MULTIPLY_WORD, PADDING, SALT_WORD, Sink, Text};
use super::{
    Heads, MULTIPLY, REGION_TOKENS, SALT_BIGRAM, SALT_UNIGRAM, TAIL_TOKENS_PER_SETTLE,
    emit_head_region, emit_tail_region,
};

/// Returns whether this processor has the features that [`emit`] needs
/// beyond AVX2: `avx512f,avx512bw,avx512dq,avx512vl,avx512vbmi2`.
pub fn detected() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512dq")
        && std::arch::is_x86_feature_detected!("avx512vl")
        && std::arch::is_x86_feature_detected!("avx512vbmi2")
}

/// Tokens hashed together: one per 64-bit lane.
const LANES: usize = 8;

/// Blocks hashed before their features go to the sink. Hashing takes long
/// chains of multiplies, and hashing several blocks in a row lets them
/// overlap.
const CHUNK_BLOCKS: usize = 8;

/// Blocks of hashed tokens kept for the tail region: enough for the last
/// [`REGION_TOKENS`] wherever they start in a block.
const RECENT_BLOCKS: usize = 4;

const _: () = assert!(REGION_TOKENS + LANES - 1 <= (RECENT_BLOCKS - 1) * LANES);

// The spans end with `LANES` zeros, which fit because the text leaves at
// least `PADDING` bytes of its buffer unused.
const _: () = assert!(LANES <= PADDING);

/// Byte offsets 0 to 63 in 16-bit lanes.
static OFFSETS: [u16; 64] = {
    let mut offsets = [0; 64];
    let mut i = 0;
    while i < 64 {
        offsets[i] = i as u16;
        i += 1;
    }
    offsets
};

/// Emits the features of every token of `text` into `sink`, as the walk in
/// the parent module does.
#[inline(always)]
pub(in super::super) fn emit<const W: usize, S: Sink>(text: &Text<W>, sink: &mut S) {
    debug_assert!(S::WIDE_TOKENS);
    // Every token has one start and one end, and each array has room for
    // a token at every byte. Clearing both would store up to 20 KiB per
    // scan, so they start uninitialized.
    let mut starts = [[MaybeUninit::uninit(); 64]; W];
    let mut ends = [[MaybeUninit::uninit(); 64]; W];
    let count = spans(text, starts.as_flattened_mut(), ends.as_flattened_mut());
    let starts = written(starts.as_flattened(), count + LANES);
    let ends = written(ends.as_flattened(), count + LANES);

    let mut first = [0u64; 2 * LANES];
    let mut recent = [[0u64; LANES]; RECENT_BLOCKS];
    let mut features = [[0u32; 2 * LANES]; CHUNK_BLOCKS];
    #[allow(unsafe_code)]
    // SAFETY: the caller is compiled for the AVX-512 features.
    let mut previous = unsafe { _mm512_setzero_si512() };
    let blocks = count.div_ceil(LANES);
    for chunk in (0..blocks).step_by(CHUNK_BLOCKS) {
        let chunk_blocks = (blocks - chunk).min(CHUNK_BLOCKS);
        for (offset, pairs) in features[..chunk_blocks].iter_mut().enumerate() {
            let block = chunk + offset;
            let at = block * LANES;
            let valid = (count - at).min(LANES);
            let tokens = hash_block(text, &starts[at..at + LANES], &ends[at..at + LANES], valid);
            #[allow(unsafe_code)]
            // SAFETY: as above, and every store writes the 64 bytes of an
            // 8-lane array of u64.
            unsafe {
                _mm512_storeu_si512(recent[block % RECENT_BLOCKS].as_mut_ptr().cast(), tokens);
                if block < 2 {
                    _mm512_storeu_si512(first[at..at + LANES].as_mut_ptr().cast(), tokens);
                }
            }
            *pairs = pair_hashes(tokens, previous);
            previous = tokens;
        }

        // Each token has a unigram in the first half of its block's pairs
        // and a bigram in the second half.
        let chunk_tokens = count.min((chunk + chunk_blocks) * LANES) - chunk * LANES;
        for (block, pairs) in features[..chunk_blocks].iter().enumerate() {
            let valid = (chunk_tokens - block * LANES).min(LANES);
            if valid == LANES {
                for &hash in pairs {
                    sink.add(hash, Heads::Both);
                }
            } else {
                for &hash in pairs[..valid].iter().chain(&pairs[LANES..LANES + valid]) {
                    sink.add(hash, Heads::Both);
                }
            }
            sink.settle(Heads::Both);
        }
    }

    for (position, &token) in first.iter().take(count.min(REGION_TOKENS)).enumerate() {
        emit_head_region(token, position, sink);
        if (position + 1).is_multiple_of(TAIL_TOKENS_PER_SETTLE) {
            sink.settle(Heads::Both);
        }
    }
    sink.settle(Heads::Both);
    emit_tail_region(
        count,
        |token| recent[token / LANES % RECENT_BLOCKS][token % LANES],
        sink,
    );
}

/// Writes the start and the last byte of every token, in order, to
/// `starts` and `ends`, followed by [`LANES`] zeros, and returns the number
/// of tokens. Both slices have room for one token per byte of the buffer,
/// and the buffer ends with at least `LANES` bytes of padding.
#[inline(always)]
fn spans<const W: usize>(
    text: &Text<W>,
    starts: &mut [MaybeUninit<u16>],
    ends: &mut [MaybeUninit<u16>],
) -> usize {
    let mut start_count = 0;
    let mut end_count = 0;
    let mut carry = 0u64;
    #[allow(unsafe_code)]
    // SAFETY: the caller is compiled for the AVX-512 features, and `OFFSETS` has the
    // 64 bytes that each unaligned load reads.
    let [low, high] = unsafe {
        [
            _mm512_loadu_si512(OFFSETS[..32].as_ptr().cast()),
            _mm512_loadu_si512(OFFSETS[32..].as_ptr().cast()),
        ]
    };
    for index in 0..text.len.div_ceil(64) {
        let words = text.words[index];
        let next = text.words.get(index + 1).copied().unwrap_or(0);
        let start_bits = (words & !((words << 1) | carry)) | text.tokens[index];
        let end_bits = (words & !((words >> 1) | (next << 63))) | text.tokens[index];
        carry = words >> 63;
        #[allow(unsafe_code)]
        // SAFETY: as above.
        let [low, high] = unsafe {
            let base = _mm512_set1_epi16((index * 64) as i16);
            [_mm512_add_epi16(low, base), _mm512_add_epi16(high, base)]
        };
        start_count = compress(starts, start_count, start_bits, low, high);
        end_count = compress(ends, end_count, end_bits, low, high);
    }
    debug_assert_eq!(start_count, end_count);
    // The last block of spans reads up to `LANES - 1` entries past the
    // last token, and hashes those lanes at offset zero.
    for out in [starts, ends] {
        for slot in &mut out[start_count..start_count + LANES] {
            slot.write(0);
        }
    }
    start_count
}

/// Returns the first `len` entries of `spans`, which [`spans`] wrote.
#[inline(always)]
fn written(spans: &[MaybeUninit<u16>], len: usize) -> &[u16] {
    assert!(len <= spans.len());
    #[allow(unsafe_code)]
    // SAFETY: `spans` writes every entry before the token count, by the
    // compress stores, and the `LANES` entries after it. `len` is that
    // count plus `LANES` and within the slice, and `MaybeUninit<u16>` has
    // the layout of `u16`.
    unsafe {
        std::slice::from_raw_parts(spans.as_ptr().cast(), len)
    }
}

/// Writes the offsets in `low` and `high` whose bit is set in `bits` to
/// `out` from `at`, and returns the new end. Each half stores 32 lanes, so
/// `out` needs room for 32 after each half's first offset. Before mask word
/// `k`, `at` is at most `64 * k`, so room for one offset per byte is enough.
#[inline(always)]
fn compress(
    out: &mut [MaybeUninit<u16>],
    at: usize,
    bits: u64,
    low: __m512i,
    high: __m512i,
) -> usize {
    let mut at = at;
    for (half, offsets) in [(bits as u32, low), ((bits >> 32) as u32, high)] {
        let slot = &mut out[at..at + 32];
        #[allow(unsafe_code)]
        // SAFETY: `slot` has the 64 bytes that the store writes, and the
        // caller is compiled for the AVX-512 features.
        unsafe {
            _mm512_storeu_si512(
                slot.as_mut_ptr().cast(),
                _mm512_maskz_compress_epi16(half, offsets),
            );
        }
        at += half.count_ones() as usize;
    }
    at
}

/// Hashes the words of one block of token spans as `Text::word_hash` does,
/// in 64-bit lanes. Lanes from `valid` on hold no token, and their values
/// are not used.
#[inline(always)]
fn hash_block<const W: usize>(
    text: &Text<W>,
    starts: &[u16],
    ends: &[u16],
    valid: usize,
) -> __m512i {
    let bytes = text.bytes().as_ptr();
    #[allow(unsafe_code)]
    // SAFETY: the caller is compiled for the AVX-512 features. Each span slice has
    // the 8 u16 (16 bytes) that the loads read. Spans lie inside the text,
    // and an 8-byte read at any text byte stays inside the buffer, thanks
    // to its padding, so both gathers read inside it. The second gather
    // reads only for words longer than 8 bytes, at their ninth byte. The
    // store and load of `hashes` cover its 64 bytes.
    unsafe {
        let start = _mm512_cvtepu16_epi64(_mm_loadu_si128(starts.as_ptr().cast()));
        let last = _mm512_cvtepu16_epi64(_mm_loadu_si128(ends.as_ptr().cast()));
        let one = _mm512_set1_epi64(1);
        let eight = _mm512_set1_epi64(8);
        let len = _mm512_sub_epi64(_mm512_add_epi64(last, one), start);

        let head = _mm512_i64gather_epi64::<1>(start, bytes.cast());
        let salted = _mm512_xor_si512(len, _mm512_set1_epi64(SALT_WORD as i64));
        let mut hash = mix_word(salted, head, len);

        let long = _mm512_cmpgt_epu64_mask(len, eight);
        let second = _mm512_mask_i64gather_epi64::<1>(
            _mm512_setzero_si512(),
            long,
            _mm512_add_epi64(start, eight),
            bytes.cast(),
        );
        let rest = _mm512_sub_epi64(len, eight);
        hash = _mm512_mask_blend_epi64(long, hash, mix_word(hash, second, rest));

        let longer = _mm512_cmpgt_epu64_mask(len, _mm512_set1_epi64(16)) & valid_lanes(valid);
        if longer != 0 {
            let mut hashes = [0u64; LANES];
            _mm512_storeu_si512(hashes.as_mut_ptr().cast(), hash);
            finish_longer(text, &mut hashes, starts, ends, longer);
            hash = _mm512_loadu_si512(hashes.as_ptr().cast());
        }
        hash
    }
}

/// Returns the lane mask of the first `valid` lanes.
#[inline(always)]
fn valid_lanes(valid: usize) -> u8 {
    (u16::MAX >> (16 - valid)) as u8
}

/// Mixes the first `len` bytes (all 8 for `len` of 8 or more) of `bytes`
/// into `hash`, lane by lane, as `mix_word` in the parent module does.
#[inline(always)]
fn mix_word(hash: __m512i, bytes: __m512i, len: __m512i) -> __m512i {
    #[allow(unsafe_code)]
    // SAFETY: the caller is compiled for the AVX-512 features.
    unsafe {
        // A shift by 64 bits or more gives zero, so lanes of 8 bytes or
        // more keep every byte.
        let bits = _mm512_slli_epi64::<3>(len);
        let dropped = _mm512_sllv_epi64(_mm512_set1_epi64(-1), bits);
        let kept = _mm512_andnot_si512(dropped, bytes);
        let product = _mm512_mullo_epi64(
            _mm512_xor_si512(hash, kept),
            _mm512_set1_epi64(MULTIPLY_WORD as i64),
        );
        _mm512_xor_si512(product, _mm512_srli_epi64::<29>(product))
    }
}

/// Finishes the hashes of the words longer than 16 bytes, in the lanes set
/// in `longer`, one at a time.
#[inline(never)]
fn finish_longer<const W: usize>(
    text: &Text<W>,
    hashes: &mut [u64; LANES],
    starts: &[u16],
    ends: &[u16],
    longer: u8,
) {
    for (lane, hash) in hashes.iter_mut().enumerate() {
        if longer >> lane & 1 == 1 {
            let start = usize::from(starts[lane]);
            let end = usize::from(ends[lane]) + 1;
            *hash = text.word_hash_rest(*hash, start + 16, end);
        }
    }
}

/// Hashes each lane as `bucket_hash` in the parent module does, into a
/// 32-bit lane.
#[inline(always)]
fn bucket_hash(value: __m512i) -> __m256i {
    #[allow(unsafe_code)]
    // SAFETY: the caller is compiled for the AVX-512 features.
    unsafe {
        let product = _mm512_mullo_epi64(value, _mm512_set1_epi64(MULTIPLY as i64));
        _mm512_cvtepi64_epi32(_mm512_srli_epi64::<32>(product))
    }
}

/// Returns the unigram of each token of the block in its first half, and
/// in its second half the bigram with the token before. Lane 7 of
/// `previous` contains the token before lane 0 (zero before the first token).
#[inline(always)]
fn pair_hashes(tokens: __m512i, previous: __m512i) -> [u32; 2 * LANES] {
    let mut pairs = [0u32; 2 * LANES];
    #[allow(unsafe_code)]
    // SAFETY: the caller is compiled for the AVX-512 features, and each
    // store writes 32 bytes of the 64 in `pairs`.
    unsafe {
        let multiply = _mm512_set1_epi64(MULTIPLY as i64);
        let unigram = bucket_hash(_mm512_xor_si512(
            tokens,
            _mm512_set1_epi64(SALT_UNIGRAM as i64),
        ));
        let before = _mm512_alignr_epi64::<7>(tokens, previous);
        let pair = _mm512_xor_si512(
            _mm512_mullo_epi64(_mm512_rol_epi64::<23>(before), multiply),
            tokens,
        );
        let bigram = bucket_hash(_mm512_xor_si512(
            pair,
            _mm512_set1_epi64(SALT_BIGRAM as i64),
        ));
        _mm256_storeu_si256(pairs.as_mut_ptr().cast(), unigram);
        _mm256_storeu_si256(pairs[LANES..].as_mut_ptr().cast(), bigram);
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::super::super::{FULL_WORDS, Text, read_window};
    use super::*;

    /// Records every feature, and lets the scan take the AVX-512 walk
    /// when `WIDE` is set.
    struct Recording<const WIDE: bool>(Vec<u32>);

    impl<const WIDE: bool> Sink for Recording<WIDE> {
        const WIDE_TOKENS: bool = WIDE;

        fn add(&mut self, hash: u32, heads: Heads) {
            assert_eq!(heads, Heads::Both);
            self.0.push(hash);
        }
    }

    #[target_feature(enable = "avx2,bmi1,bmi2,lzcnt,popcnt")]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vbmi2")]
    fn wide_features(text: &Text<FULL_WORDS>) -> Vec<u32> {
        let mut sink = Recording::<true>(Vec::new());
        emit(text, &mut sink);
        sink.0.sort_unstable();
        sink.0
    }

    fn mask_word_features(text: &Text<FULL_WORDS>) -> Vec<u32> {
        let mut sink = Recording::<false>(Vec::new());
        super::super::emit_by_mask_words(text, &mut sink);
        sink.0.sort_unstable();
        sink.0
    }

    /// Compares both walks on `prompt`, read as a scan reads it.
    fn check(prompt: &[u8]) {
        let (head, tail) = read_window(prompt);
        let text = Text::<FULL_WORDS>::new(head, tail);
        #[allow(unsafe_code)]
        // SAFETY: the callers run this only after `detected`.
        let wide = unsafe { wide_features(&text) };
        assert_eq!(wide, mask_word_features(&text), "{} bytes", prompt.len());
    }

    #[test]
    fn wide_walk_matches_mask_word_walk() {
        if !(std::arch::is_x86_feature_detected!("avx2") && detected()) {
            return;
        }
        let separators: [&[u8]; 6] = [b" ", b"\n", b"{};", b". ", b"caf\xc3\xa9 ", b"\t"];
        // Words of every length up to 40 bytes (around 8 and 16 in
        // particular) at every offset, and a text longer than the read
        // window, whose tail starts after a space.
        let mut text = Vec::new();
        let mut state = 5u32;
        while text.len() < 6_000 {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let len = (state >> 16) as usize % 40 + 1;
            text.extend(std::iter::repeat_n(b'w', len));
            text.extend_from_slice(separators[(state >> 8) as usize % separators.len()]);
            if text.len() < 1_000 || text.len() % 97 < 8 {
                check(&text);
            }
        }
        check(&text);
        check(b"");
        check(&b"a".repeat(300));
        check(&b".".repeat(3_000));
    }
}
