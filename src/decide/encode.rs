//! Encodes a [`Verdict`] as the protobuf bytes of its wire `Decision`,
//! straight from the policy's names, without building the message. The
//! bytes are the ones prost writes for [`Verdict::to_decision`]: fields in
//! field-number order, and proto3 fields at their default value left out.
//! A test compares the two on every kind of decision.

use bytes::BufMut;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};

use super::receipt::{CandidateRow, Verdict};

// Field numbers from proto/triage/v1/router.proto.
const DECISION_REQUEST_ID: u32 = 1;
const DECISION_MODEL: u32 = 2;
const DECISION_PROVIDER: u32 = 3;
const DECISION_FALLBACKS: u32 = 4;
const DECISION_COST: u32 = 5;
const DECISION_POLICY_VERSION: u32 = 6;
const DECISION_RECEIPT: u32 = 7;

const MODEL_REF_MODEL: u32 = 1;
const MODEL_REF_PROVIDER: u32 = 2;

// A candidate starts with the fields of a `ModelRef`, so the policy's
// encoded `ModelRef` of a model is also the start of its candidate.
const CANDIDATE_MODEL: u32 = 1;
const CANDIDATE_PROVIDER: u32 = 2;
const _: () = assert!(CANDIDATE_MODEL == MODEL_REF_MODEL);
const _: () = assert!(CANDIDATE_PROVIDER == MODEL_REF_PROVIDER);
const CANDIDATE_QUALITY: u32 = 3;
const CANDIDATE_COST: u32 = 4;
const CANDIDATE_DROPPED: u32 = 5;

const RECEIPT_PATH: u32 = 1;
const RECEIPT_RULE: u32 = 2;
const RECEIPT_TASK_TYPE: u32 = 3;
const RECEIPT_TASK_SOURCE: u32 = 4;
const RECEIPT_QUALITY_BAR: u32 = 5;
const RECEIPT_CANDIDATES: u32 = 6;
const RECEIPT_DECIDE_NANOS: u32 = 7;
const RECEIPT_CONFIDENCE: u32 = 8;
const RECEIPT_DIFFICULTY: u32 = 9;
const RECEIPT_DETERMINISTIC: u32 = 10;
const RECEIPT_NOTE: u32 = 11;

/// The lengths of a verdict's encoding. Computing them walks the candidate
/// list, so they are computed once, for the frame header, and passed to
/// [`Verdict::encode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodedLen {
    receipt: usize,
    total: usize,
}

impl EncodedLen {
    /// Returns the length of the whole encoded `Decision`, in bytes.
    pub fn total(self) -> usize {
        self.total
    }
}

impl Verdict<'_> {
    /// Returns the lengths of the bytes that [`Verdict::encode`] writes.
    pub fn encoded_len(&self, decide_nanos: u64) -> EncodedLen {
        let fallbacks: usize = self
            .fallback_ids()
            .map(|id| nested_len(DECISION_FALLBACKS, self.policy.encoded_model_ref(id).len()))
            .sum();
        let receipt = self.receipt_len(decide_nanos);
        let total = string_len(DECISION_REQUEST_ID, &self.request.request_id)
            + string_len(DECISION_MODEL, self.model())
            + string_len(DECISION_PROVIDER, self.provider())
            + fallbacks
            + double_len(DECISION_COST, self.estimated_cost_usd())
            + string_len(DECISION_POLICY_VERSION, self.policy_version())
            + nested_len(DECISION_RECEIPT, receipt);
        EncodedLen { receipt, total }
    }

    /// Writes the wire `Decision`, with `decide_nanos` in its receipt.
    /// `len` comes from [`Verdict::encoded_len`] with the same
    /// `decide_nanos`, and the buffer needs room for `len.total()` bytes.
    pub fn encode(&self, decide_nanos: u64, len: EncodedLen, buf: &mut impl BufMut) {
        put_string(DECISION_REQUEST_ID, &self.request.request_id, buf);
        put_string(DECISION_MODEL, self.model(), buf);
        put_string(DECISION_PROVIDER, self.provider(), buf);
        for id in self.fallback_ids() {
            let model_ref = self.policy.encoded_model_ref(id);
            put_nested_header(DECISION_FALLBACKS, model_ref.len(), buf);
            buf.put_slice(model_ref);
        }
        put_double(DECISION_COST, self.estimated_cost_usd(), buf);
        put_string(DECISION_POLICY_VERSION, self.policy_version(), buf);
        put_nested_header(DECISION_RECEIPT, len.receipt, buf);
        self.encode_receipt(decide_nanos, buf);
    }

    fn receipt_len(&self, decide_nanos: u64) -> usize {
        let parts = self.receipt_parts();
        let candidates: usize = self
            .candidate_rows()
            .map(|row| nested_len(RECEIPT_CANDIDATES, self.candidate_len(&row)))
            .sum();
        varint_len(RECEIPT_PATH, enum_value(parts.path))
            + string_len(RECEIPT_RULE, parts.rule)
            + varint_len(RECEIPT_TASK_TYPE, enum_value(parts.task_type))
            + varint_len(RECEIPT_TASK_SOURCE, enum_value(parts.task_source))
            + double_len(RECEIPT_QUALITY_BAR, self.bar)
            + candidates
            + varint_len(RECEIPT_DECIDE_NANOS, decide_nanos)
            + double_len(RECEIPT_CONFIDENCE, parts.confidence)
            + double_len(RECEIPT_DIFFICULTY, parts.difficulty)
            + varint_len(RECEIPT_DETERMINISTIC, u64::from(parts.deterministic))
            + string_len(RECEIPT_NOTE, parts.note)
    }

    fn candidate_len(&self, row: &CandidateRow<'_>) -> usize {
        self.policy.encoded_model_ref(row.id).len()
            + double_len(CANDIDATE_QUALITY, row.quality)
            + double_len(CANDIDATE_COST, row.estimated_cost_usd)
            + varint_len(CANDIDATE_DROPPED, enum_value(row.dropped.into()))
    }

    fn encode_receipt(&self, decide_nanos: u64, buf: &mut impl BufMut) {
        let parts = self.receipt_parts();
        put_varint(RECEIPT_PATH, enum_value(parts.path), buf);
        put_string(RECEIPT_RULE, parts.rule, buf);
        put_varint(RECEIPT_TASK_TYPE, enum_value(parts.task_type), buf);
        put_varint(RECEIPT_TASK_SOURCE, enum_value(parts.task_source), buf);
        put_double(RECEIPT_QUALITY_BAR, self.bar, buf);
        for row in self.candidate_rows() {
            put_nested_header(RECEIPT_CANDIDATES, self.candidate_len(&row), buf);
            buf.put_slice(self.policy.encoded_model_ref(row.id));
            put_double(CANDIDATE_QUALITY, row.quality, buf);
            put_double(CANDIDATE_COST, row.estimated_cost_usd, buf);
            put_varint(CANDIDATE_DROPPED, enum_value(row.dropped.into()), buf);
        }
        put_varint(RECEIPT_DECIDE_NANOS, decide_nanos, buf);
        put_double(RECEIPT_CONFIDENCE, parts.confidence, buf);
        put_double(RECEIPT_DIFFICULTY, parts.difficulty, buf);
        put_varint(RECEIPT_DETERMINISTIC, u64::from(parts.deterministic), buf);
        put_string(RECEIPT_NOTE, parts.note, buf);
    }
}

/// Returns the varint value of an enum field. prost writes an `int32` by
/// sign-extending it to 64 bits.
fn enum_value(value: i32) -> u64 {
    i64::from(value) as u64
}

/// Returns the length of a string field, 0 when it is empty, because
/// proto3 leaves an empty string out.
pub(crate) fn string_len(tag: u32, value: &str) -> usize {
    if value.is_empty() {
        return 0;
    }
    key_len(tag) + encoded_len_varint(value.len() as u64) + value.len()
}

/// Writes a string field, or nothing when it is empty.
pub(crate) fn put_string(tag: u32, value: &str, buf: &mut impl BufMut) {
    if value.is_empty() {
        return;
    }
    put_key(tag, WireType::LengthDelimited, buf);
    put_varint_value(value.len() as u64, buf);
    buf.put_slice(value.as_bytes());
}

fn double_len(tag: u32, value: f64) -> usize {
    if value == 0.0 { 0 } else { key_len(tag) + 8 }
}

fn put_double(tag: u32, value: f64, buf: &mut impl BufMut) {
    if value != 0.0 {
        put_key(tag, WireType::SixtyFourBit, buf);
        buf.put_f64_le(value);
    }
}

fn varint_len(tag: u32, value: u64) -> usize {
    if value == 0 {
        0
    } else {
        key_len(tag) + encoded_len_varint(value)
    }
}

fn put_varint(tag: u32, value: u64, buf: &mut impl BufMut) {
    if value != 0 {
        put_key(tag, WireType::Varint, buf);
        put_varint_value(value, buf);
    }
}

/// Returns the length of a nested message field whose body is `body_len`
/// bytes. Unlike a scalar, a present message is written even when empty.
fn nested_len(tag: u32, body_len: usize) -> usize {
    key_len(tag) + encoded_len_varint(body_len as u64) + body_len
}

fn put_nested_header(tag: u32, body_len: usize, buf: &mut impl BufMut) {
    put_key(tag, WireType::LengthDelimited, buf);
    put_varint_value(body_len as u64, buf);
}

/// Writes a field key, inline for field numbers under 16, whose key is
/// one byte. Every field number here is under 16.
#[inline]
fn put_key(tag: u32, wire_type: WireType, buf: &mut impl BufMut) {
    if tag < 16 {
        buf.put_u8(((tag << 3) | wire_type as u32) as u8);
    } else {
        encode_key(tag, wire_type, buf);
    }
}

/// Writes a bare varint, inline for values under 128 (one byte), which
/// covers most lengths here. prost's `encode_varint` is an out-of-line call,
/// and a profile of `frame/encode_verdict` put a quarter of its time there.
#[inline]
fn put_varint_value(value: u64, buf: &mut impl BufMut) {
    if value < 0x80 {
        buf.put_u8(value as u8);
    } else {
        encode_varint(value, buf);
    }
}
