//! Token features: unigrams, bigrams with the previous token, and copies
//! of the first and last tokens tagged with their position and region.
//! Tokens are words and single punctuation bytes or newlines, found from
//! the masks of a [`Text`] with one bit scan per token rather than a branch
//! per byte.

#[cfg(target_arch = "x86_64")]
pub(super) mod wide;

use super::{Heads, SETTLE_AFTER, Sink, Text, mix};

const SALT_UNIGRAM: u64 = 0x517c_c1b7_2722_0a95;
const SALT_BIGRAM: u64 = 0x2f1c_9a3e_55d0_7b13;
const SALT_FIRST: u64 = 0x3c6e_f372_fe94_f82b;
const SALT_LAST: u64 = 0x1f83_d9ab_fb41_bd6b;
const SALT_HEAD_REGION: u64 = 0x5be0_cd19_137e_2179;
const SALT_TAIL_REGION: u64 = 0x9b05_688c_2b3e_6c1f;

const MULTIPLY: u64 = 0x9e37_79b9_7f4a_7c15;

/// Number of leading and trailing tokens that also get a position-tagged
/// feature.
const EDGE_TOKENS: usize = 3;

/// Number of leading and trailing tokens that also get a feature tagged
/// with their region (instructions tend to sit at either end of a prompt).
const REGION_TOKENS: usize = 12;

/// Tail tokens between two settles: each emits at most two features.
const TAIL_TOKENS_PER_SETTLE: usize = SETTLE_AFTER / 2;

/// The state of the token walk between two mask words: 1 if a word runs
/// on across the edge and 0 if not, and where that word started.
#[derive(Clone, Copy, Default)]
struct Carry {
    word: u64,
    start: usize,
}

/// Calls `visit` with the span `start..end` of every token that ends in
/// mask word `index`, in order, and whether it is a word. `carry` comes
/// from the mask word before, and the function returns this one's.
///
/// Each token has one start bit and one end bit (its last byte), so the
/// walk takes the lowest bit of each mask in turn. Only a word that runs
/// on across a mask word edge has its start and end in different words.
#[inline(always)]
fn for_each_token_in<const W: usize>(
    text: &Text<W>,
    index: usize,
    carry: Carry,
    mut visit: impl FnMut(usize, usize, bool),
) -> Carry {
    let words = text.words[index];
    let next = text.words.get(index + 1).copied().unwrap_or(0);
    let base = index * 64;
    let mut starts = (words & !((words << 1) | carry.word)) | text.tokens[index];
    let mut ends = (words & !((words >> 1) | (next << 63))) | text.tokens[index];
    let mut start = carry.start;
    if carry.word != 0 {
        // The word that runs on from the mask word before ends at the
        // first end bit, unless it covers this whole mask word.
        if ends == 0 {
            return Carry { word: 1, start };
        }
        visit(start, base + ends.trailing_zeros() as usize + 1, true);
        ends &= ends - 1;
    }
    let runs_on = words >> 63 & next & 1;
    if runs_on != 0 {
        // The last word runs on into the next mask word: its start is the
        // highest start bit, and its end is not here.
        let bit = 63 - starts.leading_zeros();
        start = base + bit as usize;
        starts ^= 1 << bit;
    }
    while starts != 0 {
        let first = starts.trailing_zeros();
        let last = ends.trailing_zeros();
        starts &= starts - 1;
        ends &= ends - 1;
        visit(
            base + first as usize,
            base + last as usize + 1,
            words >> first & 1 == 1,
        );
    }
    Carry {
        word: runs_on,
        start,
    }
}

/// Calls `visit` with the span `start..end` of every token in order, and
/// whether it is a word.
#[cfg(test)]
pub(super) fn for_each_token<const W: usize>(
    text: &Text<W>,
    mut visit: impl FnMut(usize, usize, bool),
) {
    let mut carry = Carry::default();
    for index in 0..text.len.div_ceil(64) {
        carry = for_each_token_in(text, index, carry, &mut visit);
    }
}

/// Tokens whose unigrams and bigrams are hashed together, in a loop of
/// their own: their 16 features fill one settle.
const BLOCK_TOKENS: usize = SETTLE_AFTER / 2;

/// Capacity of the ring of hashed tokens, a power of two so that indexing
/// can mask. The ring has room for the tokens not emitted yet: fewer than
/// [`BLOCK_TOKENS`] left over from one mask word, plus up to 64 that end
/// in the next. Behind them it keeps the last [`REGION_TOKENS`] emitted,
/// which the tail region needs at the end.
const RING: usize = 128;

const _: () = assert!(BLOCK_TOKENS - 1 + 64 + REGION_TOKENS <= RING);

/// Emits the features of every token of `text` into `sink`, with the
/// AVX-512 walk when the sink allows it.
#[inline(always)]
pub(super) fn emit<const W: usize, S: Sink>(text: &Text<W>, sink: &mut S) {
    #[cfg(target_arch = "x86_64")]
    if S::WIDE_TOKENS {
        wide::emit(text, sink);
        return;
    }
    emit_by_mask_words(text, sink);
}

/// Emits the features of every token of `text` into `sink`. The tokens of
/// each 64-byte mask word are hashed into a ring first, and their features
/// are emitted from the ring in blocks of [`BLOCK_TOKENS`].
#[inline(always)]
pub(super) fn emit_by_mask_words<const W: usize, S: Sink>(text: &Text<W>, sink: &mut S) {
    let mut ring = [0u64; RING];
    // Token `i` has slot `i % RING`. `queued` tokens are hashed, and the
    // features of the first `done` are emitted.
    let mut queued = 0;
    let mut done = 0;
    let mut previous = 0;
    let mut carry = Carry::default();
    for index in 0..text.len.div_ceil(64) {
        carry = for_each_token_in(text, index, carry, |start, end, _| {
            ring[queued % RING] = text.word_hash(start, end);
            queued += 1;
        });
        // The first tokens also get region features, one at a time.
        while done < REGION_TOKENS && done < queued {
            let token = ring[done % RING];
            push(token, &mut previous, sink);
            emit_head_region(token, done, sink);
            sink.settle(Heads::Both);
            done += 1;
        }
        while queued - done >= BLOCK_TOKENS {
            let block = std::array::from_fn(|k| ring[(done + k) % RING]);
            push_block(&block, &mut previous, sink);
            sink.settle(Heads::Both);
            done += BLOCK_TOKENS;
        }
    }
    while done < queued {
        push(ring[done % RING], &mut previous, sink);
        done += 1;
    }
    sink.settle(Heads::Both);
    emit_tail_region(queued, |token| ring[token % RING], sink);
}

/// Emits the unigram of `token` and its bigram with `previous`, which then
/// becomes `token`.
#[inline(always)]
fn push<S: Sink>(token: u64, previous: &mut u64, sink: &mut S) {
    sink.add(bucket_hash(token ^ SALT_UNIGRAM), Heads::Both);
    sink.add(bigram_hash(*previous, token), Heads::Both);
    *previous = token;
}

/// Emits the unigrams and bigrams of a block of tokens, like [`push`] for
/// each. The hashes are computed in a loop of their own, apart from the
/// sink's additions.
#[inline(always)]
fn push_block<S: Sink>(block: &[u64; BLOCK_TOKENS], previous: &mut u64, sink: &mut S) {
    let mut hashes = [0u32; 2 * BLOCK_TOKENS];
    let mut before = *previous;
    for (pair, &token) in hashes.chunks_exact_mut(2).zip(block) {
        pair[0] = bucket_hash(token ^ SALT_UNIGRAM);
        pair[1] = bigram_hash(before, token);
        before = token;
    }
    for hash in hashes {
        sink.add(hash, Heads::Both);
    }
    *previous = before;
}

/// Hashes the bigram of `previous` and `token`.
#[inline(always)]
fn bigram_hash(previous: u64, token: u64) -> u32 {
    let pair = previous.rotate_left(23).wrapping_mul(MULTIPLY) ^ token;
    bucket_hash(pair ^ SALT_BIGRAM)
}

/// Hashes a value that is already well mixed with one multiply: the high
/// half of the product depends on every input bit. The low bits of a word
/// hash depend on its first few bytes only, so unigrams need this too.
#[inline(always)]
fn bucket_hash(value: u64) -> u32 {
    (value.wrapping_mul(MULTIPLY) >> 32) as u32
}

/// Emits the position- and region-tagged copies of the token at
/// `position` from the start.
#[inline(always)]
fn emit_head_region<S: Sink>(token: u64, position: usize, sink: &mut S) {
    if position < EDGE_TOKENS {
        let tagged = token ^ SALT_FIRST.wrapping_mul(position as u64 + 1);
        sink.add(mix(tagged), Heads::Both);
    }
    sink.add(mix(token ^ SALT_HEAD_REGION), Heads::Both);
}

/// Emits position- and region-tagged copies of the last tokens of the
/// `count` tokens. `hash(i)` returns the hash of token `i`, and is called
/// for the last [`REGION_TOKENS`] only.
#[inline(always)]
fn emit_tail_region<S: Sink>(count: usize, hash: impl Fn(usize) -> u64, sink: &mut S) {
    let known = count.min(REGION_TOKENS);
    for position in 0..known {
        let token = hash(count - 1 - position);
        if position < EDGE_TOKENS {
            let tagged = token ^ SALT_LAST.wrapping_mul(position as u64 + 1);
            sink.add(mix(tagged), Heads::Both);
        }
        sink.add(mix(token ^ SALT_TAIL_REGION), Heads::Both);
        if (position + 1).is_multiple_of(TAIL_TOKENS_PER_SETTLE) {
            sink.settle(Heads::Both);
        }
    }
    sink.settle(Heads::Both);
}
